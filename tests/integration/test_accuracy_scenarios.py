"""Accuracy against the sample system's own fault scenarios: each runs for real against Redis and
these collectors, writes its ground truth apart, and every detector is scored against it:
precision and recall 1.0 per fault kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse

import pytest

from tests.processes import ROOT, wait_until

pytestmark = pytest.mark.integration

SECONDS = {
    "lossy_consumer": 6,  # shipping is down from 3 s to 5.5 s
    "clock_skew": 5,  # the clock jumps at 3 s
    "retries_and_dead_letters": 6,  # a dead letter takes four failures in a row
}
"""Run time per scenario; the others inject from the start and run ``DEFAULT_SECONDS``."""
DEFAULT_SECONDS = 3


def run_scenario(name: str, collectors, redis_server, truth_path) -> dict[str, list[dict]]:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collectors.api, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    seconds = str(SECONDS.get(name, DEFAULT_SECONDS))
    command = [sys.executable, "-m", "sample_system", "scenario", "run", name, "--seconds", seconds, "--seed", "7"]
    command += ["--truth", str(truth_path), "--redis-url", redis_server.url]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    truth: dict[str, list[dict]] = {}
    for line in truth_path.read_text().splitlines():
        record = json.loads(line)
        truth.setdefault(record["fault"], []).append(record)
    return truth


def settled(collectors) -> dict:
    """The store once spans stop arriving (the scenario's exporters flush on exit)."""
    previous = {}

    def stable():
        nonlocal previous
        now = collectors.get("health")["store"]
        same = now == previous
        previous = now
        return same

    wait_until(stable, timeout=60, interval=1.0, what="spans to stop arriving")
    return previous


def score(truth: set, detected: set) -> tuple[float, float]:
    hits = len(truth & detected)
    return (hits / len(detected) if detected else 1.0, hits / len(truth) if truth else 1.0)


def stream_key(record: dict) -> tuple:
    return record["channel"], record["source"], record["partitionkey"], record["sequence"]


def detected_late(collectors, truth: list[dict]) -> set:
    late = set()
    for channel, source, pk in {(r["channel"], r["source"], r["partitionkey"]) for r in truth}:
        query = urllib.parse.urlencode({"channel": channel, "source": source, "partitionkey": pk, "limit": 100000})
        late |= {a["event_id"] for a in collectors.get(f"sequences?{query}")["arrivals"] if a["late"]}
    return late


SCENARIOS = {
    "lossy_consumer": ("drop_before_broker", "consumer_crash"),
    "duplicates": ("duplicate_publish", "double_subscription"),
    "reordering": ("reorder",),
    "retries_and_dead_letters": ("dead_letter", "transient_error"),
    "clock_skew": ("clock_skew",),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_detectors_match_the_scenario_ground_truth(name, collectors, redis_server, tmp_path):
    truth = run_scenario(name, collectors, redis_server, tmp_path / "truth.jsonl")
    settled(collectors)
    assert all(truth.get(kind) for kind in SCENARIOS[name]), {k: len(v) for k, v in truth.items()}
    lost = collectors.get("loss?grace_s=0")["lost"]
    duplicates = collectors.get("duplicates")["duplicates"]
    retried = collectors.get("retries?limit=1000")["retried"]
    skewed = collectors.get("clock-skew?limit=1000")["deliveries"]
    bus_copies = {d["event_id"] for d in duplicates if d["vantage"] == "bus"}
    pairs = {
        "drop_before_broker": (
            {stream_key(r) for r in truth.get("drop_before_broker", [])},
            {stream_key(x) for x in lost if x["where"] == "before_broker"},
        ),
        "consumer_crash": (
            {(r["group"], r["event_id"]) for r in truth.get("consumer_crash", [])},
            {(x["vantage"], x["event_id"]) for x in lost if x["where"] == "at_delivery"},
        ),
        "dead_letter": (
            {(r["group"], r["event_id"]) for r in truth.get("dead_letter", [])},
            {(x["vantage"], x["event_id"]) for x in lost if x["where"] == "in_processing"},
        ),
        "duplicate_publish": ({r["event_id"] for r in truth.get("duplicate_publish", [])}, bus_copies),
        "double_subscription": (
            {(r["group"], r["event_id"]) for r in truth.get("double_subscription", [])},
            {
                (d["vantage"], d["event_id"])
                for d in duplicates
                if d["vantage"] != "bus" and d["event_id"] not in bus_copies
            },
        ),
        # every failed attempt of a delivery, not only the delivery
        "transient_error": (
            {(r["group"], r["event_id"], r["detail"]["attempt"]) for r in truth.get("transient_error", [])},
            {(d["group"], d["event_id"], n) for d in retried for n in range(1, d["failed_attempts"] + 1)},
        ),
        "clock_skew": ({r["event_id"] for r in truth.get("clock_skew", [])}, {d["event_id"] for d in skewed}),
        "reorder": (
            {r["event_id"] for r in truth.get("reorder", [])},
            detected_late(collectors, truth.get("reorder", [])),
        ),
    }
    scores = {kind: score(*pairs[kind]) for kind in SCENARIOS[name]}
    misses = {kind: (pairs[kind][0] - pairs[kind][1], pairs[kind][1] - pairs[kind][0]) for kind in SCENARIOS[name]}
    assert scores == dict.fromkeys(SCENARIOS[name], (1.0, 1.0)), misses
