"""Pure parts of the analyses: request parameters, the critical path, the verdict, the CI check."""

from __future__ import annotations

import pytest

from collectors import check
from collectors.analyses.event_life import verdict
from collectors.analyses.filters import BadRequest, Filters, bind, parse_filters
from collectors.analyses.traces import critical_path


def span(span_id: str, start: int, duration: int, parent: str = "") -> dict:
    return {"span_id": span_id, "start_ns": start, "duration_ns": duration, "parent_span_id": parent}


def test_critical_path_follows_the_latest_ending_cause():
    spans = [span("root", 0, 10), span("fast", 1, 2, "root"), span("slow", 1, 30, "root"), span("tail", 31, 5, "slow")]
    assert critical_path(spans, []) == ["root", "slow", "tail"]


def test_critical_path_follows_links_without_a_parent():
    spans = [span("send", 0, 1), span("process", 5, 5)]
    assert critical_path(spans, []) == ["process"]
    assert critical_path(spans, [("process", "send")]) == ["send", "process"]


def test_critical_path_survives_cycles_and_unknown_links():
    spans = [span("a", 0, 5, "b"), span("b", 0, 4, "a")]
    assert critical_path(spans, [("a", "nowhere")]) == ["b", "a"]
    assert critical_path([], []) == []


def test_verdict_says_what_happened():
    published = [{"service": "orders"}]
    deliveries = [
        {"group": "payments", "outcome": "dead_lettered", "retries": [{}, {}]},
        {"group": "inventory", "outcome": "processed", "retries": []},
        {"group": "inventory", "outcome": "processed", "retries": []},
    ]
    assert verdict(published, [{}], deliveries) == (
        "Published once by orders. Seen on the bus once. inventory: processed, processed (processed more than once: "
        "a duplicate got through). payments: dead_lettered after 2 retries."
    )
    assert (
        verdict([], [], []) == "No producer span was received for it. The bus tap never saw it. No consumer handled it."
    )
    redelivered = [
        {"group": "worker", "outcome": "retried", "retries": [], "redelivery": False},
        {"group": "worker", "outcome": "processed", "retries": [], "redelivery": True},
    ]
    assert verdict(published, [], redelivered) == (
        "Published once by orders. The bus tap never saw it. worker: retried, processed (redelivered after a failed "
        "attempt)."
    )


@pytest.mark.parametrize(
    "query,message",
    [
        ({"since_ns": ["x"]}, "since_ns must be an integer"),
        ({"since_ns": ["5"], "until_ns": ["4"]}, "until_ns must not be before since_ns"),
        ({"service": ["s" * 513]}, "service must be 1 to 512 characters"),
    ],
)
def test_bad_filters_are_refused(query, message):
    with pytest.raises(BadRequest, match=message):
        parse_filters(query)


def test_filters_take_the_last_value_and_bind_only_what_sql_uses():
    filters = parse_filters({"channel": ["a", "b"], "since_ns": ["7"]})
    assert filters == Filters(since_ns=7, channel="b")
    assert bind("SELECT 1 WHERE ($channel IS NULL OR c = $channel)", filters.values()) == {"channel": "b"}


def test_check_evaluates_only_the_given_limits():
    overview = {"missing": 3, "duplicates_processed": 0, "p95_delivery_ms": None, "dead_letters": 2}
    limits = {"max_missing": 2, "max_unhandled_duplicates": 0, "max_p95_ms": 10.0, "max_lost": None}
    assert check.evaluate(overview, limits) == [
        ("missing", 3, 2, False),
        ("duplicates_processed", 0, 0, True),
        ("p95_delivery_ms", None, 10.0, True),
    ]
    text = check.summary(overview, check.evaluate(overview, limits))
    assert text.splitlines()[-1] == "FAILED: 1 of 3 limits exceeded"
    assert "  p95_delivery_ms        n/a (limit 10.0) ok" in text.splitlines()
    answer = check.answer(overview, check.evaluate(overview, limits))
    assert answer["ok"] is False and answer["verdict"] == text.splitlines()[-1]
    assert answer["limits"][2] == {"field": "p95_delivery_ms", "value": None, "limit": 10.0, "ok": True}
    assert check.answer({}, [], empty_fails=True)["verdict"].startswith("FAILED: nothing observed")
