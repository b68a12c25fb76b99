"""A hostile or careless publisher against the bus tap: whatever is published, every message is recorded
(an event, an unenveloped message, or malformed with the reason), valid neighbours are kept, later events
still arrive with the right gaps, and /health says degraded exactly while a part cannot do its work."""

from __future__ import annotations

import json
import random
from collections import Counter

import duckdb
import pytest
import redis

from tests.processes import Collectors, RedisServer, wait_until

pytestmark = pytest.mark.integration
MIB = 1024 * 1024
POLL = {"EVENTSCOPE_BROKER_POLL_S": "0.2"}


def event(source: str, sequence: int, **extra: str) -> bytes:
    body = {"specversion": "1.0", "id": f"{source}-{sequence}", "source": source, "type": "t.hostile"}
    return json.dumps({**body, "sequence": str(sequence), **extra}).encode()


def surrogate_event(sequence: int) -> bytes:
    """A CloudEvent whose id is a lone surrogate escape: valid JSON, not valid Unicode."""
    return b'{"specversion":"1.0","id":"\\ud800","source":"/t/s","type":"t","sequence":"%d"}' % sequence


DEEP_ARRAY = b"[" * 1000 + b"]" * 1000
DEEP_EVENT = b'{"specversion":"1.0","id":"d","source":"/t/d","type":"t","data":' + DEEP_ARRAY + b"}"


def publish_all(client: redis.Redis, channel: str, payloads: list[bytes]) -> None:
    """Publish in one pipeline, so the payloads reach the tap together and share its batches."""
    pipe = client.pipeline(transaction=False)
    for payload in payloads:
        pipe.publish(channel, payload)
    assert all(receivers == 1 for receivers in pipe.execute())  # the tap is the one subscriber


def stored(collectors: Collectors, channel: str) -> list[tuple]:
    """(Kind, Error, Sequence, Size) of each message on ``channel`` in arrival order, read from the store file."""
    connection = duckdb.connect(collectors.store, read_only=True)
    try:
        return connection.execute(
            "SELECT Kind, Error, Sequence, Size FROM bus_messages WHERE Channel = ? ORDER BY ArrivalSeq", [channel]
        ).fetchall()
    finally:
        connection.close()


def wait_for_messages(collectors: Collectors, count: int) -> None:
    """Until ``count`` rows are stored and the tap has checked the commits of all of them (it checks them
    in order, a few batches behind the writer, so ``recorded`` may trail the stored rows for a moment)."""
    wait_until(lambda: collectors.get("health")["store"]["bus_messages"] == count, timeout=60, what=f"{count} rows")
    wait_until(lambda: collectors.get("health")["tap"]["recorded"] >= count, timeout=60, what=f"{count} checked")


def bus_stream(collectors: Collectors, channel: str) -> dict:
    (stream,) = [s for s in collectors.get(f"report?channel={channel}")["streams"] if s["vantage"] == "bus"]
    return stream


def test_deep_nesting_is_recorded_and_the_tap_goes_on(collectors, redis_server):
    client = redis_server.client()
    publish_all(client, "t.deep", [event("/t/d", 1), DEEP_ARRAY, DEEP_EVENT, event("/t/d", 2)])
    wait_for_messages(collectors, 4)
    publish_all(client, "t.deep", [event("/t/d", 3)])  # the tap still listens after them
    wait_for_messages(collectors, 5)
    health = collectors.get("health")
    assert client.pubsub_numpat() == 1
    assert (health["status"], health["problems"], health["tap"]["recorded"]) == ("ok", [], 5)
    stream = bus_stream(collectors, "t.deep")
    assert (stream["received"], stream["missing"]) == (3, 0)
    collectors.stop()
    kinds = [(kind, error) for kind, error, _, _ in stored(collectors, "t.deep")]
    assert kinds == [
        ("event", None),
        ("unenveloped", None),
        ("malformed", "JSON nested too deeply to decode"),
        ("event", None),
        ("event", None),
    ]


def test_a_number_too_long_to_decode_is_recorded_by_kind(collectors, redis_server):
    huge = b"1" * 5000  # valid JSON; Python refuses integers of more than 4300 digits
    claims = b'{"specversion":"1.0","id":"n","source":"/t/n","type":"t","data":' + huge + b"}"
    publish_all(redis_server.client(), "t.number", [huge, claims, event("/t/n", 1)])
    wait_for_messages(collectors, 3)
    collectors.stop()
    kinds = [(kind, error) for kind, error, _, _ in stored(collectors, "t.number")]
    assert kinds == [("unenveloped", None), ("malformed", "JSON number too long to decode"), ("event", None)]


def test_a_lone_surrogate_is_malformed_and_its_batch_is_kept(collectors, redis_server):
    payloads = [event("/t/s", n) for n in range(1, 201)]
    payloads.insert(100, surrogate_event(999))
    publish_all(redis_server.client(), "t.surrogate", payloads)
    wait_for_messages(collectors, 201)
    stream = bus_stream(collectors, "t.surrogate")
    assert (stream["received"], stream["missing"], stream["gaps"]) == (200, 0, [])
    (broken,) = collectors.get("malformed")["messages"]
    assert broken["error"] == "attribute 'id' is not valid Unicode: lone surrogate '\\ud800' at 0"
    assert broken["payload"] == surrogate_event(999).decode()
    assert collectors.get("health")["status"] == "ok"


def test_surrogates_in_optional_attributes_and_nul_bytes(collectors, redis_server):
    payloads = [
        event("/t/n", 1, subject="a\udc00b"),  # json.dumps writes the escape: \udc00
        event("/t/n", 2, partitionkey="\ud83d"),
        event("/t/n", 3, subject="nul\x00inside"),
        b"\x00" * 64,
        b'{"specversion":"1.0","id":"nul\\u0000id","source":"/t/n","type":"t","sequence":"4"}',
        event("/t/n", 5),
    ]
    publish_all(redis_server.client(), "t.nul", payloads)
    wait_for_messages(collectors, 6)
    collectors.stop()
    rows = stored(collectors, "t.nul")
    assert [kind for kind, _, _, _ in rows] == ["malformed", "malformed", "event", "unenveloped", "event", "event"]
    assert rows[0][1] == "attribute 'subject' is not valid Unicode: lone surrogate '\\udc00' at 1"
    assert rows[1][1] == "attribute 'partitionkey' is not valid Unicode: lone surrogate '\\ud83d' at 0"
    assert [sequence for kind, _, sequence, _ in rows if kind == "event"] == [3, 4, 5]


def test_ten_mib_payloads_are_recorded_with_their_size(collectors, redis_server):
    big_event = event("/t/b", 2, subject="x" * (10 * MIB))
    deep_and_big = b"[" * (10 * MIB)
    binary = random.Random(9).randbytes(10 * MIB)
    payloads = [event("/t/b", 1), big_event, deep_and_big, binary, event("/t/b", 3)]
    client = redis_server.client()
    for payload in payloads:  # one by one: a pipeline of 30 MiB would exceed the tap's output buffer limit
        publish_all(client, "t.big", [payload])
    wait_for_messages(collectors, 5)
    messages = collectors.get("messages?limit=5")["messages"]
    assert [len(m["payload"]) <= 64 * 1024 for m in messages] == [True] * 5
    collectors.stop()
    rows = stored(collectors, "t.big")
    assert [(kind, size) for kind, _, _, size in rows] == [
        ("event", len(payloads[0])),
        ("event", len(big_event)),
        ("unenveloped", 10 * MIB),
        ("unenveloped", 10 * MIB),
        ("event", len(payloads[4])),
    ]


def garbage(rng: random.Random, index: int) -> bytes:
    makers = (
        lambda: DEEP_ARRAY,
        lambda: DEEP_EVENT,
        lambda: surrogate_event(index),
        lambda: rng.randbytes(rng.randrange(1, 300)),
        lambda: b'{"specversion":"1.0","id":"\xff\xfe","source":"/t/g","type":"t"}',  # invalid UTF-8: not JSON
        lambda: b'{"specversion":"2.0","id":"x","source":"/t/g","type":"t"}',
        lambda: b"\x00" * rng.randrange(1, 50),
        lambda: b"[" * rng.randrange(1, 5000),
    )
    return makers[index % len(makers)]()


def test_a_flood_of_garbage_between_valid_events_keeps_every_valid_one():
    server = RedisServer()
    collectors = Collectors(server.url, extra_env=POLL)
    try:
        rng = random.Random(7)
        payloads, valid = [], 0
        for index in range(4000):
            payloads.append(garbage(rng, index))
            if index % 4 == 0:
                valid += 1
                payloads.append(event("/t/f", valid))
        publish_all(server.client(), "t.flood", payloads)
        wait_for_messages(collectors, len(payloads))
        stream = bus_stream(collectors, "t.flood")
        health = collectors.get("health")
    finally:
        collectors.stop()
        server.stop()
    assert (stream["received"], stream["missing"], stream["duplicates"]) == (1000, 0, 0)
    assert (health["status"], health["tap"]["recorded"], health["tap"]["unstored"]) == ("ok", len(payloads), 0)
    kinds = Counter(kind for kind, _, _, _ in stored(collectors, "t.flood"))
    # 500 of each garbage maker: deep events, surrogates and specversion 2.0 claim to be CloudEvents
    assert kinds == {"event": 1000, "malformed": 1500, "unenveloped": 2500}
    assert "Traceback" not in collectors.log()


def test_health_is_degraded_while_redis_is_away_and_the_outage_is_a_gap():
    server = RedisServer()
    collectors = Collectors(server.url, extra_env=POLL)
    try:
        publish_all(server.client(), "t.away", [event("/t/a", n) for n in (1, 2, 3)])
        wait_for_messages(collectors, 3)
        server.stop()
        degraded = wait_until(lambda: (h := collectors.get("health"))["status"] == "degraded" and h, what="degraded")
        wait_until(lambda: len(collectors.get("health")["problems"]) == 2, what="both parts to notice")
        problems = collectors.get("health")["problems"]
        server = RedisServer(port=server.port)
        wait_until(lambda: collectors.get("health")["status"] == "ok", timeout=30, what="ok again")
        healthy = collectors.get("health")
        publish_all(server.client(), "t.away", [event("/t/a", n) for n in (6, 7)])  # 4 and 5 were never seen
        wait_for_messages(collectors, 5)
        stream = bus_stream(collectors, "t.away")
    finally:
        collectors.stop()
        server.stop()
    assert degraded["tap"]["connected"] is False
    assert [p.split(" (")[0] for p in problems] == [
        "bus tap cannot reach Redis, reconnecting",
        "broker stats cannot reach Redis, reconnecting",
    ]
    assert (healthy["problems"], healthy["tap"]["state"], healthy["broker"]["state"]) == ([], "connected", "connected")
    assert (stream["received"], stream["gaps"]) == (5, [[4, 5]])
    assert "Traceback" not in collectors.log()


def test_client_kill_is_survived_and_counted(collectors, redis_server):
    client = redis_server.client()
    publish_all(client, "t.kill", [event("/t/k", 1)])
    wait_for_messages(collectors, 1)
    assert client.client_kill_filter(_type="pubsub") >= 1
    wait_until(lambda: collectors.get("health")["tap"]["reconnects"] >= 1, what="the tap to notice")
    wait_until(lambda: client.pubsub_numpat() == 1 and collectors.get("health")["status"] == "ok", what="back")
    publish_all(client, "t.kill", [event("/t/k", 2)])
    wait_for_messages(collectors, 2)
    assert bus_stream(collectors, "t.kill")["gaps"] == []
    tap = [c for c in client.client_list() if c["name"] == "eventscope-bus-tap"]
    assert len(tap) == 1 and tap[0]["psub"] == "1"
