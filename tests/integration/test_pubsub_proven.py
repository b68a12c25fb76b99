"""A plain redis-py application plus the two lines of eventscope-redis, exporting over real OTLP to a
real collectors process: its flow graph, delivery latency per channel, the events lost while one
subscriber was down, and a publish that redis-py retried (so Redis carried it twice) as a duplicate.

The application is tests/integration/plain_pubsub_app.py: a shop publishing orders (sync, then a
pipeline, then asyncio), a mailer (``run_in_thread`` handler that publishes ``mail.sent``), a
warehouse (``redis.asyncio`` pattern subscription) and an audit (``get_message`` loop), each its own
process and service. The shop talks to Redis through a proxy that cuts one connection after a PUBLISH
reached Redis, so redis-py's own retry sends that very message again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.processes import ReplyDroppingProxy, wait_until

pytestmark = pytest.mark.integration
APP = Path(__file__).with_name("plain_pubsub_app.py")
WAIT_S = 30.0


class AppProcess:
    """One role of the plain app: stdin for commands, every stdout line kept."""

    def __init__(self, role: str, redis_url: str, api: str):
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "OTEL_SERVICE_NAME": role,
            "OTEL_EXPORTER_OTLP_ENDPOINT": api,
            "OTEL_METRICS_EXPORTER": "none",
        }
        self.role = role
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, str(APP), role],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def orders(self) -> list[str]:
        return [line for line in self.lines if line.startswith("{")]

    def wait_for(self, line: str) -> None:
        wait_until(lambda: line in self.lines, timeout=WAIT_S, what=f"{self.role}: {line!r} in {self.lines[-5:]}")

    def wait_orders(self, count: int) -> None:
        wait_until(lambda: len(self.orders()) >= count, timeout=WAIT_S, what=f"{self.role} received {count}")
        assert len(self.orders()) == count, self.lines

    def send(self, command: str) -> None:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.role == "shop":
            self.send("quit")
        else:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=WAIT_S)
        assert "stopped" in self.lines, self.lines
        assert not any("Traceback" in line for line in self.lines), self.lines


@pytest.fixture
def apps():
    started: list[AppProcess] = []
    yield started
    for app in started:
        if app.process.poll() is None:
            app.process.kill()
            app.process.wait(timeout=10)


def test_a_plain_app_with_two_lines_shows_its_flow_latency_loss_and_duplicates(redis_server, collectors, apps):
    proxy = ReplyDroppingProxy(redis_server.port)

    def start(role: str, url: str = redis_server.url) -> AppProcess:
        app = AppProcess(role, url, collectors.api)
        apps.append(app)
        if role != "shop":
            app.wait_for("ready")
        return app

    mailer, warehouse, audit = start("mailer"), start("warehouse"), start("audit")
    shop = start("shop", proxy.url)

    proxy.arm(b'"o-3"')  # order 3's PUBLISH reaches Redis, its reply is lost, redis-py sends it again
    shop.send("sync 5")
    shop.wait_for("published 5")
    assert proxy.fired.is_set()
    for subscriber in (mailer, warehouse, audit):
        subscriber.wait_orders(6)  # five orders, order 3 twice

    audit.stop()  # down while orders 6..9 are published
    shop.send("pipeline 4")
    shop.wait_for("published 9")
    for subscriber in (mailer, warehouse):
        subscriber.wait_orders(10)

    audit_again = start("audit")
    shop.send("async 3")
    shop.wait_for("published 12")
    for subscriber in (mailer, warehouse):
        subscriber.wait_orders(13)
    audit_again.wait_orders(3)
    for app in (shop, mailer, warehouse, audit_again):
        app.stop()
    proxy.stop()

    # 12 orders; order 3 carried twice. mailer and warehouse got 13 deliveries, audit 6 + 3.
    deliveries = {"mailer": 13, "warehouse": 13, "audit": 9}
    lost = wait_until(
        lambda: (answer := collectors.get("loss?grace_s=0"))["counts"]["at_delivery"] >= 4 and answer,
        timeout=WAIT_S,
        what="the audit's lost deliveries",
    )
    assert lost["counts"] == {"before_broker": 0, "at_delivery": 4, "in_processing": 0}
    assert sorted((entry["vantage"], entry["channel"], entry["sequence"]) for entry in lost["lost"]) == [
        ("audit", "orders.placed", sequence) for sequence in (6, 7, 8, 9)
    ]

    duplicates = collectors.get("duplicates")["duplicates"]
    seen_twice = sorted((d["vantage"], d["channel"], d["copies"], d["processed"]) for d in duplicates)
    assert seen_twice == [
        ("audit", "orders.placed", 2, 1),
        ("bus", "orders.placed", 2, 0),
        ("mailer", "orders.placed", 2, 1),
        ("warehouse", "orders.placed", 2, 1),
    ]
    assert len({d["event_id"] for d in duplicates}) == 1

    latency = collectors.get("latency?by=channel")["summary"]
    delivery = {row["key"]: row["count"] for row in latency if row["measure"] == "delivery"}
    assert delivery == {"orders.placed": sum(deliveries.values())}

    flow = collectors.get("flow")
    edges = {(e["source"], e["target"], e["kind"]): e for e in flow["edges"]}
    assert edges[("service:shop", "channel:orders.placed", "publish")]["count"] == 12
    assert edges[("service:mailer", "channel:mail.sent", "publish")]["count"] == 13
    for group, count in deliveries.items():
        edge = edges[("channel:orders.placed", f"service:{group}", "deliver")]
        assert edge["count"] == count, edge
    assert edges[("channel:orders.placed", "service:mailer", "deliver")]["duplicates"] >= 1
    node_ids = {node["id"] for node in flow["nodes"]}
    assert {"service:shop", "service:mailer", "service:warehouse", "service:audit"} <= node_ids
    assert {"channel:orders.placed", "channel:mail.sent"} <= node_ids
