"""A scenario has the bus to itself: the continuous demo runner (another process) closes its shop while
a scenario holds the lease and comes back with new sources afterwards; with no runner nothing waits.
Every connection of the sample system carries a Redis client name."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections import Counter, defaultdict

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sample_system import lease, scenarios
from sample_system.config import load_config
from sample_system.services import accounts, inventory, notifications, order_view, payments, shipping
from sample_system.shop import Shop, exporter_factory_for
from sample_system.storefront import run_load
from tests.processes import ROOT, wait_until

pytestmark = pytest.mark.integration

QUIET_ENV = {"OTEL_SDK_DISABLED": "true", "PATH": "/usr/bin:/bin"}
GROUP_CHANNELS = {
    module.SERVICE: module.CHANNELS for module in (inventory, payments, shipping, notifications, accounts, order_view)
}


class Lines:
    """A child process's standard output, line by line, read in the background."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line.rstrip())

    def having(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]


class Tap:
    """Every event on the shop's channels in arrival order, as (source, id), from one PSUBSCRIBE."""

    def __init__(self, client):
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe("shop.*")
        self.seen: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.1)
            if message and message["type"] == "pmessage":
                event = json.loads(message["data"])
                self.seen.append((event["source"], event["id"]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.pubsub.close()


def _runner(redis_url: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "sample_system", "run", "--redis-url", redis_url, "--rate", "20"]
    return subprocess.Popen(
        command, cwd=ROOT, env=QUIET_ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


def _scenario(redis_url: str, *options: str) -> tuple[subprocess.Popen, Lines]:
    """``scenario run happy_path`` in the background, its output read line by line."""
    command = [sys.executable, "-m", "sample_system", "scenario", "run", "happy_path", *options]
    process = subprocess.Popen(
        [*command, "--redis-url", redis_url],
        cwd=ROOT,
        env=QUIET_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return process, Lines(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_a_scenario_pauses_the_demo_runner_and_has_every_group_process_each_event_once(redis_server):
    client = redis_server.client()
    runner = _runner(redis_server.url)
    out = Lines(runner)
    tap = Tap(client)
    during: list[dict] = []
    lines: list[str] = []

    def progress(line: str) -> None:
        if line.startswith("t="):  # the scenario's shop is running: look at the bus from outside
            paused = client.keys(lease.PAUSED_PREFIX + "*")
            numsub = dict(client.pubsub_numsub(*{c for cs in GROUP_CHANNELS.values() for c in cs}))
            during.append({"lease": client.get(lease.LEASE_KEY), "paused": paused, "numsub": numsub})
        lines.append(line)

    try:
        wait_until(lambda: out.having("sources /sample/"), timeout=60, what="the runner's shop")
        wait_until(lambda: len(tap.seen) > 10, timeout=60, what="the runner's load on the bus")
        memory = InMemorySpanExporter()
        summary = scenarios.run_scenario(
            "happy_path", 3, 5, None, redis_server.url, progress=progress, exporter_factory=exporter_factory_for(memory)
        )
        known = {source for source, _ in tap.seen}
        wait_until(lambda: len(out.having("sources /sample/")) == 2, timeout=60, what="the runner resumed")
        wait_until(lambda: {s for s, _ in tap.seen} - known, timeout=60, what="the resumed shop's events")
    finally:
        tap.close()
        _stop(runner)
    assert runner.returncode == 0
    wait_until(lambda: out.having("shops 2, paused 1"), what="the runner's last line")
    assert any("waiting for the demo shop to pause" in line for line in lines)
    assert any("the demo shop has paused" in line for line in lines)
    assert out.having("paused, scenario happy_path has the bus") and out.having("resuming with a fresh shop")

    # while the scenario ran: its lease was held, the runner had acknowledged, only one shop was subscribed
    assert during and all(d["lease"] == b"happy_path" and len(d["paused"]) == 1 for d in during)
    one_shop = Counter(c for cs in GROUP_CHANNELS.values() for c in cs)
    assert all(d["numsub"][c.encode()] == one_shop[c] for d in during for c in one_shop)
    assert client.get(lease.LEASE_KEY) is None and not client.keys(lease.PAUSED_PREFIX + "*")

    spans = memory.get_finished_spans()
    producers = [s for s in spans if s.kind == SpanKind.PRODUCER]
    consumers = [s for s in spans if s.kind == SpanKind.CONSUMER]
    assert producers and consumers
    # Redis counted one subscriber per group on the channel, plus the tap: no second shop listened
    extra = {
        s.attributes["eventscope.receivers"] - one_shop[s.attributes["messaging.destination.name"]] for s in producers
    }
    assert extra == {1}
    published = defaultdict(set)
    for span in producers:
        published[span.attributes["messaging.destination.name"]].add(span.attributes["messaging.message.id"])
    for group, channels in GROUP_CHANNELS.items():
        mine = [s for s in consumers if s.attributes["messaging.consumer.group.name"] == group]
        copies = Counter(s.attributes["messaging.message.id"] for s in mine)
        assert set(copies) == set().union(*(published[c] for c in channels)), group
        assert set(copies.values()) == {1}, group
        assert {s.attributes["eventscope.outcome"] for s in mine} == {"processed"}, group
    assert all(set(outcomes) == {"processed"} for outcomes in summary["outcomes"].values())

    # on the bus: the scenario's events form one unbroken run; the runner's sources before and after differ
    scenario_sources = {s.attributes["cloudevents.event_source"] for s in producers}
    order = [source for source, _ in tap.seen]
    marks = [i for i, source in enumerate(order) if source in scenario_sources]
    assert set(order[marks[0] : marks[-1] + 1]) <= scenario_sources
    before, after = set(order[: marks[0]]), set(order[marks[-1] + 1 :])
    assert before and after and not before & after and not (before | after) & scenario_sources


def test_with_no_runner_a_scenario_starts_at_once(redis_server):
    """A runner id whose heartbeat expired (a runner killed outright) does not count, and is forgotten."""
    client = redis_server.client()
    client.sadd(lease.RUNNERS_KEY, "killed-runner")
    lines: list[str] = []
    scenarios.run_scenario(
        "happy_path",
        1,
        6,
        None,
        redis_server.url,
        progress=lines.append,
        exporter_factory=exporter_factory_for(InMemorySpanExporter()),
    )
    assert lines[0].startswith("scenario happy_path: Happy path")
    assert not [line for line in lines if "waiting" in line]
    assert client.get(lease.LEASE_KEY) is None and not client.sismember(lease.RUNNERS_KEY, "killed-runner")


def test_a_scenario_waiting_for_a_runner_that_never_pauses_stops_on_sigterm(redis_server):
    client = redis_server.client()
    client.sadd(lease.RUNNERS_KEY, "hung-runner")
    client.set(lease.ALIVE_PREFIX + "hung-runner", 1, ex=60)
    scenario, out = _scenario(redis_server.url)
    try:
        wait_until(lambda: out.having("waiting for the demo shop to pause"), timeout=60, what="the scenario waiting")
        assert client.get(lease.LEASE_KEY) == b"happy_path"
    finally:
        _stop(scenario)
        client.delete(lease.ALIVE_PREFIX + "hung-runner")
        client.srem(lease.RUNNERS_KEY, "hung-runner")
    assert scenario.returncode == 0
    wait_until(lambda: out.having("done"), what="the scenario's last line")
    assert out.having("stopped before it started") and not out.having("t=")
    assert client.get(lease.LEASE_KEY) is None


def test_a_scenario_stopped_by_sigterm_gives_the_bus_back(redis_server):
    client = redis_server.client()
    scenario, out = _scenario(redis_server.url, "--seconds", "60")
    try:
        wait_until(lambda: out.having("t="), timeout=60, what="the scenario running")
        assert client.get(lease.LEASE_KEY) == b"happy_path"
        assert 0 < client.pttl(lease.LEASE_KEY) <= lease.LEASE_TTL_S * 1000
    finally:
        _stop(scenario)
    assert scenario.returncode == 0
    assert client.get(lease.LEASE_KEY) is None


def test_a_second_scenario_waits_for_the_first_then_gives_up(redis_server):
    client = redis_server.client()
    client.set(lease.LEASE_KEY, "duplicates", px=30_000)
    said: list[str] = []
    try:
        second = lease.ScenarioLease(client, "reordering", said.append, wait_s=1.5)
        assert second.acquire() is False
        assert any("waiting for scenario duplicates" in line for line in said)
        assert client.get(lease.LEASE_KEY) == b"duplicates"
        second.release()  # not ours: left alone
        assert client.get(lease.LEASE_KEY) == b"duplicates"
    finally:
        client.delete(lease.LEASE_KEY)
    third = lease.ScenarioLease(client, "reordering", said.append, wait_s=1.5)
    assert third.acquire() is True and client.get(lease.LEASE_KEY) == b"reordering"
    third.release()
    assert client.get(lease.LEASE_KEY) is None


def test_every_connection_of_the_shop_has_a_client_name(redis_server):
    client = redis_server.client()
    client.client_setname("test-observer")
    before = {c["id"] for c in client.client_list()}
    config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_V1_SHARE": "0"})
    with Shop(config, exporter_factory_for(InMemorySpanExporter())) as shop:
        run_load(shop.handlers(), rate=0, seed=41, stop=threading.Event(), limit=20)
        assert shop.wait_idle()
        clients = [c for c in client.client_list() if c["id"] not in before]
    names = Counter(c["name"] for c in clients)
    assert clients and all(name.startswith("sample-") and " " not in name for name in names), names
    subscribers = {c["name"] for c in clients if int(c["sub"]) > 0}
    assert subscribers == {f"sample-{group}" for group in GROUP_CHANNELS}
    assert {f"sample-{s}-publisher" for s in ("orders", "inventory", "payments", "shipping", "accounts")} <= set(names)
    assert "sample-shop" in names
