"""The bus tap on a real Redis Cluster: classic and sharded channels are each seen once per message, garbage on a
sharded channel is malformed and the tap goes on, and a killed primary shows as exactly the gap it caused."""

from __future__ import annotations

import json
import threading
import uuid

import duckdb
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.cluster import RedisCluster

from eventscope_redis import RedisPubSubInstrumentor
from tests.processes import Collectors, wait_until

pytestmark = pytest.mark.integration
WAIT_S = 60


def cluster_collectors(cluster, shard_channels: list[str] = ()) -> Collectors:
    env = {"EVENTSCOPE_REDIS_CLUSTER": "1", "EVENTSCOPE_BROKER_POLL_S": "0.5"}
    if shard_channels:
        env["EVENTSCOPE_TAP_SHARD_CHANNELS"] = ",".join(shard_channels)
    collectors = Collectors(cluster.url, extra_env=env)
    wait_until(lambda: placed(collectors, shard_channels), WAIT_S, what="the tap on every shard owner")
    return collectors


def placed(collectors: Collectors, channels) -> bool:
    where = collectors.get("health")["tap"]["cluster"]
    return where["classic_node"] is not None and set(channels) <= set(where["shard_channels"])


def event(source: str, sequence: int) -> bytes:
    body = {"specversion": "1.0", "id": f"{source}-{sequence}", "source": source, "type": "t.cluster"}
    return json.dumps({**body, "sequence": str(sequence)}).encode()


def channels_on_every_shard(cluster, prefix: str) -> dict[int, str]:
    """One channel name per primary (its port -> the channel), found by hashing candidate names."""
    found: dict[int, str] = {}
    primaries = set(cluster.primaries())
    for index in range(1000):
        channel = f"{prefix}.{index}"
        found.setdefault(cluster.owner(channel), channel)
        if set(found) >= primaries:
            return found
    raise AssertionError("no channel name for some shard")


def stored(collectors: Collectors, channel: str) -> list[tuple]:
    connection = duckdb.connect(collectors.store, read_only=True)
    try:
        return connection.execute(
            "SELECT Kind, Sequence FROM bus_messages WHERE Channel = ? ORDER BY ArrivalSeq", [channel]
        ).fetchall()
    finally:
        connection.close()


def bus_stream(collectors: Collectors, channel: str) -> dict:
    (stream,) = [s for s in collectors.get(f"report?channel={channel}")["streams"] if s["vantage"] == "bus"]
    return stream


def test_classic_and_sharded_messages_are_each_seen_once(redis_cluster):
    prefix = f"once.{uuid.uuid4().hex[:6]}"
    sharded = channels_on_every_shard(redis_cluster, prefix)
    discovered = f"{prefix}.found"  # not configured: found because a subscriber listens to it
    listener = redis_cluster.node(redis_cluster.owner(discovered)).pubsub()
    listener.ssubscribe(discovered)
    collectors = cluster_collectors(redis_cluster, list(sharded.values()))
    client = RedisCluster(host="127.0.0.1", port=redis_cluster.port)
    try:
        wait_until(lambda: placed(collectors, [discovered]), WAIT_S, what="the discovered sharded channel")
        for sequence in range(1, 6):
            for channel in sharded.values():
                assert client.spublish(channel, event(f"/{channel}", sequence)) == 1  # the tap alone
            assert client.spublish(discovered, event("/found", sequence)) == 2  # the tap and the listener
            client.publish(f"{prefix}.classic", event("/classic", sequence))
        expected = 5 * (len(sharded) + 2)
        wait_until(lambda: collectors.get("health")["tap"]["recorded"] >= expected, WAIT_S, what="every message")
        for channel in [*sharded.values(), discovered, f"{prefix}.classic"]:
            stream = bus_stream(collectors, channel)
            assert (stream["received"], stream["duplicates"], stream["missing"]) == (5, 0, 0), channel
        assert collectors.get("health")["tap"]["recorded"] == expected  # nothing seen twice, from any node
        assert len(set(collectors.get("health")["tap"]["cluster"]["shard_owners"])) == len(sharded)
    finally:
        client.close()
        listener.close()
        collectors.stop()
    assert "Traceback" not in collectors.log()


def test_garbage_on_a_sharded_channel_is_malformed_and_the_tap_goes_on(redis_cluster):
    channel = f"garbage.{uuid.uuid4().hex[:6]}"
    collectors = cluster_collectors(redis_cluster, [channel])
    client = RedisCluster(host="127.0.0.1", port=redis_cluster.port)
    garbage = [
        b'{"specversion": "1.0"}',
        b'{"specversion":"1.0","id":"x","source":"/g","type":"t","sequence":"two"}',
        b"\xff\xfe",
        b"[" * 5000,
        b"",
    ]
    try:
        client.spublish(channel, event("/g", 1))
        for payload in garbage:
            assert client.spublish(channel, payload) == 1
        client.spublish(channel, event("/g", 2))
        wait_until(lambda: collectors.get("health")["tap"]["recorded"] == 7, WAIT_S, what="every message stored")
        assert collectors.get("health")["status"] == "ok"
    finally:
        client.close()
        collectors.stop()
    kinds = [kind for kind, _ in stored(collectors, channel)]
    assert kinds[0] == kinds[-1] == "event"
    assert kinds.count("malformed") == 2 and kinds.count("event") == 2  # two claim to be events and are not
    assert "Traceback" not in collectors.log()


RECEIVERS = "eventscope.receivers"
SEQUENCE = "eventscope.sequence"
DESTINATION = "messaging.destination.name"


class FlowPublisher:
    """An instrumented publisher: rounds of SPUBLISH, one per channel, until stopped. ``lock`` is held around
    each publish, so a node killed under it dies between two publishes, never inside one."""

    def __init__(self, cluster, channels: list[str]):
        self.client = RedisCluster(host="127.0.0.1", port=cluster.port, socket_connect_timeout=1, socket_timeout=2)
        self.channels = channels
        self.lock = threading.Lock()
        self.rounds = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for channel in self.channels:
                with self.lock:
                    try:
                        self.client.spublish(channel, b'{"flow": true}')
                    except Exception:  # the shard is down: the span says so, and the sequence is spent
                        pass
            self.rounds += 1
            self.stop.wait(0.01)

    def run_until(self, rounds: int) -> None:
        wait_until(lambda: self.rounds >= rounds, WAIT_S, what=f"{rounds} rounds")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=WAIT_S)
        self.client.close()


def ground_truth(exporter: InMemorySpanExporter, channel: str) -> tuple[set[int], set[int]]:
    """(sequences the tap received, sequences it could not see) on ``channel``, from the PRODUCER spans alone:
    the tap is the channel's one subscriber, so SPUBLISH's receiver count says whether it heard each one."""
    heard, unheard = set(), set()
    for span in exporter.get_finished_spans():
        if span.kind == SpanKind.PRODUCER and span.attributes[DESTINATION] == channel:
            (heard if span.attributes.get(RECEIVERS, 0) >= 1 else unheard).add(span.attributes[SEQUENCE])
    return heard, unheard


def reported_missing(collectors: Collectors, channel: str) -> set[int]:
    return {seq for low, high in bus_stream(collectors, channel)["gaps"] for seq in range(low, high + 1)}


@pytest.fixture
def instrumented():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = RedisPubSubInstrumentor()
    instrumentor.instrument(tracer_provider=provider, source="/flow/1")
    yield exporter
    instrumentor.uninstrument()


def test_a_killed_primary_shows_as_exactly_the_gap_it_caused_and_the_tap_follows_the_failover(
    redis_cluster, instrumented
):
    sharded = channels_on_every_shard(redis_cluster, f"flow.{uuid.uuid4().hex[:6]}")
    victim = next(port for port in sharded if port != redis_cluster.port)  # the classic listener's node stays up
    collectors = cluster_collectors(redis_cluster, list(sharded.values()))
    publisher = FlowPublisher(redis_cluster, list(sharded.values()))
    hit = sharded[victim]
    try:
        publisher.thread.start()
        publisher.run_until(30)
        with publisher.lock:
            redis_cluster.kill(victim)
        killed_at = max(ground_truth(instrumented, hit)[0] | ground_truth(instrumented, hit)[1])
        wait_until(
            lambda: max(ground_truth(instrumented, hit)[0]) > killed_at, WAIT_S, what="the tap hearing the shard again"
        )
        publisher.run_until(publisher.rounds + 30)
        publisher.close()
        heard = {channel: ground_truth(instrumented, channel)[0] for channel in sharded.values()}
        total = sum(len(sequences) for sequences in heard.values())
        wait_until(lambda: collectors.get("health")["tap"]["recorded"] == total, WAIT_S, what="every heard message")
        wait_until(lambda: collectors.get("health")["status"] == "ok", WAIT_S, what="the tap placed again")
        for channel in sharded.values():
            seen, unseen = ground_truth(instrumented, channel)
            interior = {seq for seq in unseen if min(seen) < seq < max(seen)}
            assert reported_missing(collectors, channel) == interior, channel
            assert bus_stream(collectors, channel)["received"] == len(seen)
        assert reported_missing(collectors, hit)  # the outage was seen, as a gap
        assert collectors.get("health")["tap"]["reconnects"] >= 1
        assert collectors.get("health")["tap"]["cluster"]["shard_channels"] == sorted(sharded.values())
    finally:
        publisher.close()
        collectors.stop()
        redis_cluster.start(victim)  # it rejoins as a replica of the promoted one: the next test has a whole cluster
        wait_until(lambda: redis_cluster.roles().get(victim) == "slave", WAIT_S, what="the old primary rejoining")
    assert "Traceback" not in collectors.log()


def test_after_a_slot_migration_the_tap_listens_at_the_new_owner_and_misses_only_what_it_could_not_hear(
    redis_cluster, instrumented
):
    channel = f"moving.{uuid.uuid4().hex[:6]}"
    origin = redis_cluster.owner(channel)
    target = next(port for port in redis_cluster.primaries() if port != origin)
    collectors = cluster_collectors(redis_cluster, [channel])
    publisher = FlowPublisher(redis_cluster, [channel])
    try:
        publisher.thread.start()
        publisher.run_until(20)
        with publisher.lock:
            redis_cluster.move_slot(channel, target)
        moved_at = max(set.union(*ground_truth(instrumented, channel)))
        wait_until(
            lambda: max(ground_truth(instrumented, channel)[0]) > moved_at, WAIT_S, what="the tap at the new owner"
        )
        publisher.run_until(publisher.rounds + 20)
        publisher.close()
        seen, unseen = ground_truth(instrumented, channel)
        wait_until(lambda: collectors.get("health")["tap"]["recorded"] == len(seen), WAIT_S, what="every heard one")
        assert reported_missing(collectors, channel) == {seq for seq in unseen if min(seen) < seq < max(seen)}
        assert collectors.get("health")["tap"]["cluster"]["shard_owners"] == [f"127.0.0.1:{target}"]
    finally:
        publisher.close()
        collectors.stop()
    assert "Traceback" not in collectors.log()


def test_broker_stats_come_from_every_node(redis_cluster):
    channel = f"stats.{uuid.uuid4().hex[:6]}"
    listener = redis_cluster.node(redis_cluster.owner(channel)).pubsub()
    listener.ssubscribe(channel)
    classic = redis_cluster.node(redis_cluster.primaries()[-1]).pubsub()
    classic.subscribe(f"{channel}.classic")
    collectors = cluster_collectors(redis_cluster, [channel])
    try:
        wait_until(lambda: collectors.get("health")["broker"]["samples"] >= 2, WAIT_S, what="two polls")
        nodes = collectors.get("health")["broker"]["nodes"]
        latest = collectors.get("broker")["latest"]
    finally:
        listener.close()
        classic.close()
        collectors.stop()
    live = {f"127.0.0.1:{port}" for port in redis_cluster.roles()}
    assert {address for address, answered in nodes.items() if answered} == live
    figures = latest["info"]["nodes"]
    assert {address for address, node in figures.items() if node["role"] == "master"} == {
        f"127.0.0.1:{port}" for port in redis_cluster.primaries()
    }
    subscribers = {c["channel"]: c["subscribers"] for c in latest["channels"]}
    assert subscribers[channel] == 2  # the listener and the tap, both at the shard's owner
    assert subscribers[f"{channel}.classic"] == 1
    assert latest["numpat"] == 1  # the tap's one pattern subscription, on one node only
    assert sum(node["pubsub_patterns"] or 0 for node in figures.values()) == 1
    assert "Traceback" not in collectors.log()
