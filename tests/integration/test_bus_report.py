"""CloudEvents published with plain redis-cli come back in the report with exact numbers."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.processes import wait_until

pytestmark = pytest.mark.integration


def redis_cli(port: int, *args: str) -> str:
    binary = shutil.which("redis-cli")
    assert binary, "redis-cli is installed with redis-server"
    return subprocess.run([binary, "-p", str(port), *args], check=True, capture_output=True, text=True).stdout


def cloudevent(source: str, sequence: int, event_id: str | None = None, partitionkey: str | None = "p0") -> str:
    event = {
        "specversion": "1.0",
        "id": event_id or f"{source}-{sequence}",
        "source": source,
        "type": "test.happened",
        "sequence": str(sequence),
    }
    if partitionkey is not None:
        event["partitionkey"] = partitionkey
    return json.dumps(event)


def bus_streams(collectors, channel: str) -> list[dict]:
    return [s for s in collectors.get("report")["streams"] if s["vantage"] == "bus" and s["channel"] == channel]


def test_gap_duplicate_and_reorder_are_counted_exactly(collectors, redis_server):
    # sequence 6 is never published (gap), 3 arrives after 4 (reorder), 5 is published twice (duplicate)
    for sequence in (1, 2, 4, 3, 5, 5, 7):
        redis_cli(redis_server.port, "PUBLISH", "t.orders", cloudevent("/test/a", sequence))
    # a second stream on the same channel without a partition key, in order
    for sequence in (1, 2, 3):
        redis_cli(redis_server.port, "PUBLISH", "t.orders", cloudevent("/test/b", sequence, partitionkey=None))
    streams = wait_until(lambda: len(bus_streams(collectors, "t.orders")) == 2 and bus_streams(collectors, "t.orders"))
    streams = wait_until(
        lambda: (
            sum(s["received"] for s in bus_streams(collectors, "t.orders")) == 10
            and bus_streams(collectors, "t.orders")
        )
    )
    by_source = {s["source"]: s for s in streams}
    assert by_source["/test/a"] == {
        "vantage": "bus",
        "channel": "t.orders",
        "source": "/test/a",
        "partitionkey": "p0",
        "received": 7,
        "duplicates": 1,
        "out_of_order": 1,
        "missing": 1,
        "gaps": [[6, 6]],
        "lost": 0,
        "lost_gaps": [],
    }
    assert by_source["/test/b"]["partitionkey"] is None
    assert (by_source["/test/b"]["received"], by_source["/test/b"]["missing"]) == (3, 0)


def test_a_gap_is_lost_once_its_newer_neighbour_is_older_than_the_grace_window(collectors, redis_server):
    for sequence in (1, 2, 4):
        redis_cli(redis_server.port, "PUBLISH", "t.lost", cloudevent("/test/l", sequence))
    wait_until(lambda: collectors.get("health")["store"]["bus_messages"] == 3)
    (fresh,) = [s for s in collectors.get("report?grace_s=3600")["streams"] if s["channel"] == "t.lost"]
    assert (fresh["gaps"], fresh["lost"], fresh["lost_gaps"]) == ([[3, 3]], 0, [])
    report = wait_until(
        lambda: (r := collectors.get("report?grace_s=0.2&channel=t.lost")) and r["totals"]["lost"] and r
    )
    assert [(s["lost"], s["lost_gaps"]) for s in report["streams"]] == [(1, [[3, 3]])]
    assert report["grace_s"] == 0.2


def test_streams_are_keyed_by_channel_source_and_partition(collectors, redis_server):
    redis_cli(redis_server.port, "PUBLISH", "t.keys", cloudevent("/test/k", 1, partitionkey="p0"))
    redis_cli(redis_server.port, "PUBLISH", "t.keys", cloudevent("/test/k", 1, "other-id", partitionkey="p1"))
    redis_cli(redis_server.port, "PUBLISH", "t.keys2", cloudevent("/test/k", 3, partitionkey="p0"))
    wait_until(lambda: collectors.get("health")["store"]["bus_messages"] == 3)
    keys = {(s["channel"], s["source"], s["partitionkey"]) for s in collectors.get("report")["streams"]}
    assert keys == {("t.keys", "/test/k", "p0"), ("t.keys", "/test/k", "p1"), ("t.keys2", "/test/k", "p0")}


def test_garbage_on_the_bus_is_counted_by_kind_and_nothing_else_breaks(collectors, redis_server):
    redis_cli(redis_server.port, "PUBLISH", "t.mixed", cloudevent("/test/g", 1))
    for garbage in ("hello", "{not json", '{"specversion": "1.0"}', "[1,2,3]"):
        redis_cli(redis_server.port, "PUBLISH", "t.mixed", garbage)
    redis_server.client().publish("t.mixed", b"\x00\xff\xfe binary")  # not even UTF-8
    redis_cli(redis_server.port, "PUBLISH", "t.mixed", cloudevent("/test/g", 2))
    wait_until(lambda: collectors.get("health")["store"]["bus_messages"] == 7)
    report = collectors.get("report")
    (stream,) = bus_streams(collectors, "t.mixed")
    assert (stream["received"], stream["missing"], stream["duplicates"]) == (2, 0, 0)
    assert report["malformed"] == 1  # only a payload that claims to be a CloudEvent can be a broken one
    malformed = collectors.get("malformed")
    assert malformed["count"] == 1
    (broken,) = malformed["messages"]
    assert (broken["payload"], broken["error"]) == (
        '{"specversion": "1.0"}',
        "missing required attribute(s): id, source, type",
    )
    kinds = {m["payload"]: (m["kind"], m["error"]) for m in collectors.get("messages")["messages"]}
    for plain in ("hello", "{not json", "[1,2,3]"):
        assert kinds[plain] == ("unenveloped", None)
    assert sum(kind == "unenveloped" for kind, _ in kinds.values()) == 4
    assert collectors.get("health")["status"] == "ok"


def test_report_cli_prints_the_same_json(collectors, redis_server):
    import sys

    redis_cli(redis_server.port, "PUBLISH", "t.cli", cloudevent("/test/cli", 1))
    wait_until(lambda: collectors.get("health")["store"]["bus_messages"] == 1)
    out = subprocess.run(
        [sys.executable, "-m", "collectors", "report", "--api", collectors.api], check=True, capture_output=True
    ).stdout
    printed = json.loads(out)
    live = collectors.get("report")
    printed.pop("generated_at_ns"), live.pop("generated_at_ns")
    assert printed == live


def test_report_cli_fails_clearly_without_collectors():
    import sys

    from tests.processes import free_port

    result = subprocess.run(
        [sys.executable, "-m", "collectors", "report", "--api", f"http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "cannot read the report" in result.stderr
