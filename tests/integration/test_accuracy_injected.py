"""Accuracy: faults injected into a real flow (redis-py publishes, OTLP consumer spans), ground
truth written apart as JSON lines, and every detector scored against it: precision and recall 1.0
per fault kind."""

from __future__ import annotations

import json
import random
import urllib.parse

import pytest

from tests.integration.test_analysis_shop import EventFlow
from tests.processes import wait_until

pytestmark = pytest.mark.integration

CHANNEL = "shop.orders"
SOURCE = "/sample/orders/acc1"
PARTITIONS = ("p0", "p1")
EVENTS_PER_PARTITION = 40
GROUPS = ("inventory", "payments")
KINDS = ("duplicate_publish", "reorder", "drop_before_broker", "consumer_crash", "dead_letter", "double_subscription")


class Injector:
    """Publishes every stream in order, applying the planned fault at each position; records truth."""

    def __init__(self, flow: EventFlow, truth_path, seed: int):
        self.flow = flow
        self.truth_path = truth_path
        self.random = random.Random(seed)

    def record(self, fault: str, event: dict | None, group: str | None = None, sequence=None, pk=None, **detail):
        entry = {
            "fault": fault,
            "event_id": event["id"] if event else None,
            "channel": CHANNEL,
            "source": SOURCE,
            "partitionkey": event["pk"] if event else pk,
            "sequence": event["sequence"] if event else sequence,
            "group": group,
            "time_ns": event["t_ns"] if event else None,
            "detail": detail,
        }
        with open(self.truth_path, "a") as truth:
            truth.write(json.dumps(entry) + "\n")

    def plan(self) -> dict[int, str]:
        """One fault at a time, never on the first or last three events, never adjacent to another."""
        positions = list(range(2, EVENTS_PER_PARTITION - 3, 3))
        self.random.shuffle(positions)
        kinds = list(KINDS) * 2
        return dict(zip(positions, kinds, strict=False))

    def deliver(self, event: dict, skip: str | None = None, dead: str | None = None, twice: dict | None = None):
        for group in GROUPS:
            if group == skip:
                continue
            if group == dead:
                self.flow.consume(group, event, outcome="dead_lettered", retries=2, reason="poison", delay_ms=3)
                continue
            self.flow.consume(group, event, delay_ms=3)
            if twice and group in twice:
                outcome = "processed" if twice[group] else "duplicate_skipped"
                self.flow.consume(group, event, outcome=outcome, delay_ms=4)

    def run_stream(self, pk: str) -> None:
        plan = self.plan()
        held = None
        for sequence in range(1, EVENTS_PER_PARTITION + 1):
            fault = plan.get(sequence)
            if fault == "drop_before_broker":
                self.record(fault, None, sequence=sequence, pk=pk)
                continue
            event = self.flow.publish("orders", CHANNEL, SOURCE, sequence, pk=pk, to_bus=fault != "reorder")
            if fault == "reorder":
                held = (event, sequence + 2)
                self.record(fault, event, detail_after=sequence + 2)
            elif fault == "duplicate_publish":
                self.flow.redis.publish(CHANNEL, event["payload"])
                self.record(fault, event)
                self.deliver(event, twice=dict.fromkeys(GROUPS, False))
            elif fault == "consumer_crash":
                group = self.random.choice(GROUPS)
                self.record(fault, event, group)
                self.deliver(event, skip=group)
            elif fault == "dead_letter":
                group = self.random.choice(GROUPS)
                self.record(fault, event, group, attempts=3)
                self.deliver(event, dead=group)
            elif fault == "double_subscription":
                group = self.random.choice(GROUPS)
                processed_twice = self.random.random() < 0.5
                self.record(fault, event, group, processed_twice=processed_twice)
                self.deliver(event, twice={group: processed_twice})
            elif fault != "reorder":
                self.deliver(event)
            if held and held[1] == sequence:
                self.flow.redis.publish(CHANNEL, held[0]["payload"])
                self.deliver(held[0])
                held = None


def truth_sets(path) -> dict[str, set]:
    sets = {kind: set() for kind in KINDS}
    for line in path.read_text().splitlines():
        t = json.loads(line)
        if t["fault"] in ("duplicate_publish", "reorder"):
            sets[t["fault"]].add(t["event_id"])
        elif t["fault"] == "drop_before_broker":
            sets[t["fault"]].add((t["partitionkey"], t["sequence"]))
        elif t["fault"] == "double_subscription":
            sets[t["fault"]].add((t["group"], t["event_id"], t["detail"]["processed_twice"]))
        else:
            sets[t["fault"]].add((t["group"], t["event_id"]))
    return sets


def detected_sets(get) -> dict[str, set]:
    loss = get("loss?grace_s=0")["lost"]
    duplicates = get("duplicates")["duplicates"]
    bus_duplicates = {d["event_id"] for d in duplicates if d["vantage"] == "bus"}
    late = set()
    for pk in PARTITIONS:
        query = urllib.parse.urlencode({"channel": CHANNEL, "source": SOURCE, "partitionkey": pk, "vantage": "bus"})
        late |= {a["event_id"] for a in get(f"sequences?{query}")["arrivals"] if a["late"]}
    return {
        "duplicate_publish": bus_duplicates,
        "reorder": late,
        "drop_before_broker": {(x["partitionkey"], x["sequence"]) for x in loss if x["where"] == "before_broker"},
        "consumer_crash": {(x["vantage"], x["event_id"]) for x in loss if x["where"] == "at_delivery"},
        "dead_letter": {(x["vantage"], x["event_id"]) for x in loss if x["where"] == "in_processing"},
        "double_subscription": {
            (d["vantage"], d["event_id"], d["processed"] > 0)
            for d in duplicates
            if d["vantage"] != "bus" and d["event_id"] not in bus_duplicates
        },
    }


def score(truth: set, detected: set) -> tuple[float, float]:
    true_positives = len(truth & detected)
    precision = true_positives / len(detected) if detected else 1.0
    recall = true_positives / len(truth) if truth else 1.0
    return precision, recall


def test_every_detector_has_precision_and_recall_one(collectors, redis_server, tmp_path):
    flow = EventFlow(collectors.api, redis_server.client())
    truth_path = tmp_path / "truth.jsonl"
    injector = Injector(flow, truth_path, seed=20261126)
    try:
        for pk in PARTITIONS:
            injector.run_stream(pk)
        flow.flush(collectors)
    finally:
        flow.close()
    truth = truth_sets(truth_path)
    published = (
        EVENTS_PER_PARTITION * len(PARTITIONS) - len(truth["drop_before_broker"]) + len(truth["duplicate_publish"])
    )
    wait_until(lambda: collectors.get("health")["store"]["bus_messages"] == published, what="every publish tapped")
    detected = detected_sets(collectors.get)
    scores = {kind: score(truth[kind], detected[kind]) for kind in KINDS}
    assert all(truth[kind] for kind in KINDS), {kind: len(truth[kind]) for kind in KINDS}
    misses = {kind: (truth[kind] - detected[kind], detected[kind] - truth[kind]) for kind in KINDS}
    assert scores == dict.fromkeys(KINDS, (1.0, 1.0)), misses
    dead = {(d["group"], d["event_id"]) for d in collectors.get("dead-letters")["dead_letters"]}
    assert dead == truth["dead_letter"]
