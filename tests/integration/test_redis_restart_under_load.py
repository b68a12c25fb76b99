"""Redis restarts while events flow: the bus tap and the broker stats poller come back by themselves, and the
outage shows as a sequence gap on the bus and a gap in the broker series."""

from __future__ import annotations

import json
import threading
import time

import duckdb
import pytest
import redis

from collectors.bus.broker_stats import snapshot
from tests.processes import Collectors, RedisServer, wait_until

pytestmark = pytest.mark.integration
SOURCE = "/test/restart"
CHANNEL = "t.restart"


class Publisher(threading.Thread):
    """Publishes one CloudEvent after another, spending a sequence number even when Redis is away."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.sequence = 0
        self.published: list[int] = []
        self.failed: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        while not self.stop.is_set():
            self.sequence += 1
            event = {"specversion": "1.0", "id": f"r-{self.sequence}", "source": SOURCE, "type": "t.restart"}
            try:
                client.publish(CHANNEL, json.dumps({**event, "sequence": str(self.sequence)}))
                self.published.append(self.sequence)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self.failed.append(self.sequence)
            self.stop.wait(0.005)


def bus_sequences(store: str) -> list[int]:
    connection = duckdb.connect(store, read_only=True)
    try:
        rows = connection.execute(
            "SELECT Sequence FROM bus_messages WHERE Valid AND Source = ? ORDER BY ArrivalSeq", [SOURCE]
        ).fetchall()
        return [sequence for (sequence,) in rows]
    finally:
        connection.close()


def broker_series(store: str) -> list[int]:
    connection = duckdb.connect(store, read_only=True)
    try:
        return [sample["t_ns"] for sample in snapshot(connection, None, None)["series"]]
    finally:
        connection.close()


def test_tap_and_poller_reconnect_and_the_outage_is_a_gap():
    server = RedisServer()
    collectors = Collectors(server.url, extra_env={"EVENTSCOPE_BROKER_POLL_S": "0.2", "EVENTSCOPE_GRPC_LISTEN": "off"})
    publisher = Publisher(server.url)
    publisher.start()
    try:
        health = collectors.get
        wait_until(lambda: health("health")["tap"]["received"] >= 100, what="events on the bus")
        wait_until(lambda: health("health")["broker"]["samples"] >= 2, what="broker samples")
        server.stop()
        down_ns = time.time_ns()  # from here until up_ns no redis-server runs
        wait_until(lambda: len(publisher.failed) >= 10, what="publishes failing while Redis is down")
        wait_until(lambda: not health("health")["tap"]["connected"], what="the tap noticing")
        wait_until(lambda: not health("health")["broker"]["connected"], what="the poller noticing")
        up_ns = time.time_ns()
        server = RedisServer(port=server.port)
        wait_until(lambda: health("health")["tap"]["connected"], timeout=30, what="the tap reconnecting")
        wait_until(lambda: health("health")["broker"]["connected"], timeout=30, what="the poller reconnecting")
        received = health("health")["tap"]["received"]
        wait_until(lambda: health("health")["tap"]["received"] >= received + 100, what="events after the restart")
        status = health("health")
    finally:
        publisher.stop.set()
        publisher.join(timeout=10)
        collectors.stop()
        server.stop()
    assert status["tap"]["reconnects"] >= 1 and status["broker"]["reconnects"] >= 1
    assert "Traceback" not in collectors.log()

    seen = bus_sequences(collectors.store)
    assert not set(seen) & set(publisher.failed)  # nothing published into the void was seen
    assert seen == sorted(seen) and set(seen) <= set(publisher.published)
    last_before = max(s for s in seen if s < publisher.failed[0])
    first_after = min(s for s in seen if s > publisher.failed[-1])
    assert set(range(last_before + 1, first_after)) >= set(publisher.failed)  # the outage is one gap
    assert first_after - last_before - 1 >= len(publisher.failed)

    samples = broker_series(collectors.store)
    assert any(t < down_ns for t in samples) and any(t > up_ns for t in samples)
    assert not [t for t in samples if down_ns < t < up_ns]  # no sample while Redis was away: a gap in time
