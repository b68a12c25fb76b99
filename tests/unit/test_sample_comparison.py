"""The sync_vs_events scenario's pure parts: its phases, the faults on their clock, and the span tally."""

from __future__ import annotations

import pytest

from sample_system import comparison


def test_phases_follow_each_other_and_scale():
    plan = comparison.phases(0.5)
    assert [p["name"] for p in plan] == ["steady", "burst", "shipping_slow", "shipping_down", "shipping_back"]
    assert all(a["end_s"] == b["start_s"] for a, b in zip(plan, plan[1:], strict=False))
    assert plan[-1]["end_s"] == pytest.approx(comparison.TOTAL_S / 2)
    assert [p["load"] for p in plan] == [1.0, 2.0, 1.0, 1.0, 1.0]


def test_the_faults_open_exactly_in_their_phases():
    plan = comparison.phases(1.0)
    settings = comparison.fault_settings(plan)
    slow, down = settings["slow_consumer"], settings["consumer_crash"]
    assert (slow.text("group"), down.text("group")) == ("shipping", "shipping")
    for phase in plan:
        middle = (phase["start_s"] + phase["end_s"]) / 2
        assert (slow.window(middle) is not None) == (phase["name"] == "shipping_slow")
        assert (down.window(middle) is not None) == (phase["name"] == "shipping_down")


def span(trace: int, span_id: int, parent: int | None, service: str, start: int, order: str | None = None) -> dict:
    return {"trace": trace, "span": span_id, "parent": parent, "service": service, "start_ns": start, "order": order}


def test_complexity_follows_each_orders_traces():
    orders = {"o1": {"accepted_ns": 10}, "o2": {"accepted_ns": 100}}
    spans = [
        span(1, 1, None, "orders", 5, "o1"),
        span(1, 2, 1, "inventory", 20, "o1"),
        span(1, 3, 2, "payments", 30),
        span(2, 4, None, "orders", 50, "o2"),
        span(2, 5, 4, "inventory", 60),
        span(3, 6, None, "accounts", 70),  # no order: a sign-up
    ]
    shape = comparison.complexity(spans, orders)
    assert shape["orders_traced"] == 2
    assert shape["spans_per_order"] == 2.5 and shape["traces_per_order"] == 1
    assert shape["services"] == ["inventory", "orders", "payments"]
    assert shape["edges"] == [["inventory", "payments"], ["orders", "inventory"]]
    assert shape["needed_for_acceptance"] == ["inventory", "orders"]  # o2's inventory span began before it was


def test_complexity_of_no_orders_is_empty():
    shape = comparison.complexity([], {})
    assert shape["spans_per_order"] is None and shape["edges"] == [] and shape["orders_traced"] == 0
