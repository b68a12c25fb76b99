"""Scoring the collectors' answers against what a client app planted (its ground truth JSON).

Every client app under tests/clients/ writes the same shape of truth:

- ``channel``, ``producer_service``, ``consumer_service``: where its messages went; ``consumer_group``
  when the consumer names one (else the vantage point is the consuming service);
- ``publishes``: publish calls from the producer service to the channel (a duplicate publish included);
- ``deliveries``: handler runs at the consumer service on the channel (redeliveries included);
- ``duplicates``: {message id: extra copies} that are not redeliveries, seen by the consumer;
- ``duplicates_processed``: those the consumer processed again (no idempotency guard: all of them);
- ``redeliveries``: {message id: times handed again after a failed, retried, nacked or expired attempt};
- ``failed``: ids whose every delivery at the consumer failed (lost in processing; dead-lettered too);
- ``failed_deliveries``: deliveries that ended in error, a failed attempt before a redelivery included
  (default: one per failed id); a Celery retry ends in state RETRY, not in error;
- ``lost``: ids published and never delivered; ``lost_sequences``: numbers never delivered, where
  the system numbers its messages (``numbered``); /loss names a lost message by its id when a
  producer span told it, else (Kafka consumers, no producer ids) by its number;
- ``dead_lettered``: ids moved to ``dead_letter_channel`` and consumed there;
- optional ``deliveries_by_type``: {event type (Celery: task name): deliveries};
- optional ``streams``: false when the spans name no message and no place in a stream (kafka-python),
  so the report has no stream to count at the consumer;
- optional ``unseen``: faults the app planted that its instrumentation leaves no trace of (not scored).

The expected answers follow docs/analyses.md and the shared contract: a redelivery is not a
duplicate, a delivery that ended in error is failed, and a consumer without a group is seen as
its service. Each ``check_*`` names the endpoint it reads, so a failing endpoint fails alone.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.processes import Collectors, wait_until

ENDPOINTS = ("report", "duplicates", "retries", "loss", "latency", "flow")


def _vantage(truth: dict) -> str:
    return truth.get("consumer_group") or truth["consumer_service"]


def _consumer_streams(collectors: Collectors, truth: dict) -> list[dict]:
    report = collectors.get("report?grace_s=0")
    return [s for s in report["streams"] if s["vantage"] == _vantage(truth) and s["channel"] == truth["channel"]]


def check_report(collectors: Collectors, truth: dict) -> None:
    streams = _consumer_streams(collectors, truth)
    if truth.get("streams") is False:
        assert streams == [], streams
        return
    assert streams, f"no stream at {_vantage(truth)} on {truth['channel']}"
    sums = Counter()
    for stream in streams:
        for field in ("received", "duplicates", "redeliveries", "duplicates_processed", "missing", "lost"):
            sums[field] += stream.get(field) or 0
    expected = {
        "received": truth["deliveries"],
        "duplicates": sum(truth["duplicates"].values()),
        "redeliveries": sum(truth["redeliveries"].values()),
        "duplicates_processed": truth.get("duplicates_processed", sum(truth["duplicates"].values())),
        "missing": _count_numbers(truth.get("lost_sequences", [])),
        "lost": _count_numbers(truth.get("lost_sequences", [])),
    }
    assert {k: sums[k] for k in expected} == expected, streams
    totals = collectors.get("report?grace_s=0")["totals"]
    assert totals.get("redeliveries") == expected["redeliveries"], totals


def _numbers(ranges: list[list[int]]) -> list[int]:
    return [n for first, last in ranges for n in range(first, last + 1)]


def _count_numbers(ranges: list[list[int]]) -> int:
    return len(_numbers(ranges))


def check_duplicates(collectors: Collectors, truth: dict) -> None:
    answer = collectors.get("duplicates")
    at_consumer = [d for d in answer["duplicates"] if d["vantage"] == _vantage(truth)]
    extra = {d["event_id"]: d["copies"] - 1 - (d.get("redeliveries") or 0) for d in at_consumer}
    assert {k: v for k, v in extra.items() if v} == truth["duplicates"], at_consumer
    redelivered = {d["event_id"]: d.get("redeliveries") for d in at_consumer if d.get("redeliveries")}
    assert redelivered == {k: v for k, v in truth["redeliveries"].items() if k in redelivered}, at_consumer
    processed = sum(d["processed"] for d in at_consumer)
    assert processed == truth.get("duplicates_processed", sum(truth["duplicates"].values())), at_consumer


def check_retries(collectors: Collectors, truth: dict) -> None:
    answer = collectors.get("retries?limit=1000")
    redeliveries = [r for r in answer["retried"] if r.get("kind") == "redelivery"]
    attempts: dict[str, int] = {}
    for entry in redeliveries:
        attempts[entry["event_id"]] = max(attempts.get(entry["event_id"], 0), entry["attempts"])
    assert attempts == {k: n + 1 for k, n in truth["redeliveries"].items()}, answer
    assert [r for r in answer["retried"] if r.get("kind") != "redelivery"] == [], answer


def check_loss(collectors: Collectors, truth: dict) -> None:
    answer = collectors.get("loss?grace_s=0")
    mine = [x for x in answer["lost"] if x["vantage"] in (_vantage(truth), "bus")]
    found = sorted((x["where"], x["event_id"] or x["sequence"]) for x in mine)
    expected = sorted(
        [("in_processing", i) for i in truth["failed"]]
        + [("at_delivery", i) for i in truth["lost"]]
        + [("at_delivery", n) for n in _numbers(truth.get("lost_sequences", [])) if not truth["lost"]]
    )
    assert found == expected, answer


def check_latency(collectors: Collectors, truth: dict) -> None:
    by_channel = collectors.get("latency?by=channel")["summary"]
    counts = {(s["measure"], s["key"]): s["count"] for s in by_channel}
    assert counts.get(("delivery", truth["channel"])) == truth["deliveries"], by_channel
    assert counts.get(("processing", truth["channel"])) == truth["deliveries"], by_channel
    if "deliveries_by_type" in truth:
        by_type = collectors.get("latency?by=type")["summary"]
        delivery = {s["key"]: s["count"] for s in by_type if s["measure"] == "delivery"}
        assert delivery == truth["deliveries_by_type"], by_type


def check_flow(collectors: Collectors, truth: dict) -> None:
    """Publish and deliver edges (and the dead-letter queue's deliver edge), all compared at once."""
    flow = collectors.get("flow")
    edges = {(e["source"], e["target"], e["kind"]): e for e in flow["edges"]}
    channel, producer, consumer = (
        f"channel:{truth['channel']}",
        f"service:{truth['producer_service']}",
        f"service:{truth['consumer_service']}",
    )

    def fields(key: tuple, *names: str) -> tuple | None:
        edge = edges.get(key)
        return tuple(edge[name] for name in names) if edge else None

    found = {
        "publish": fields((producer, channel, "publish"), "count"),
        "deliver": fields((channel, consumer, "deliver"), "count", "errors", "duplicates", "gaps"),
    }
    expected = {
        "publish": (truth["publishes"],),
        "deliver": (
            truth["deliveries"],
            truth.get("failed_deliveries", len(truth["failed"])),
            sum(truth["duplicates"].values()),
            _count_numbers(truth.get("lost_sequences", [])),
        ),
    }
    if truth.get("dead_letter_channel"):
        found["dead_letter"] = fields((f"channel:{truth['dead_letter_channel']}", consumer, "deliver"), "count")
        expected["dead_letter"] = (len(truth["dead_lettered"]),)
    assert found == expected, f"found {found}, expected {expected}; edges: {flow['edges']}"


CHECKS = {
    "report": check_report,
    "duplicates": check_duplicates,
    "retries": check_retries,
    "loss": check_loss,
    "latency": check_latency,
    "flow": check_flow,
}


def expect_gap(request, gaps: dict, *key: str) -> None:
    """Mark a case the collectors do not read exactly yet as an expected failure, strictly: the test still
    runs, and the day it passes, it fails until its entry in ``gaps`` is removed (docs/compatibility.md)."""
    reason = gaps.get(key)
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def check(endpoint: str, collectors: Collectors, truth: dict) -> None:
    CHECKS[endpoint](collectors, truth)


def stored_spans(collectors: Collectors) -> list[dict]:
    """Every stored span as /api/v1/traces/{id} returns it (raw SpanAttributes), oldest trace first."""
    traces = collectors.get("traces?limit=1000")["traces"]
    spans = [s for t in reversed(traces) for s in collectors.get(f"traces/{t['trace_id']}")["spans"]]
    assert len(spans) == collectors.get("health")["store"]["spans"], "some spans are in no listed trace"
    return spans


def attribute_names(spans: list[dict], kind: str) -> set[str]:
    """The attribute names spans of one kind (``Producer``, ``Consumer``) carried, as received."""
    return {name for s in spans if s["kind"] == kind for name in s["attributes"]}


def wait_for_spans(collectors: Collectors, count: int) -> None:
    wait_until(lambda: collectors.get("health")["store"]["spans"] == count, what=f"{count} spans stored")
