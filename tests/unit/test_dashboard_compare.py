"""The Compare page's figures from a planted sync_vs_events results document: every row counted by hand."""

from __future__ import annotations

import pytest

from dashboard.scenario_runner import run_arguments
from dashboard.views import compare_transforms as page

S = 1_000_000_000
PHASES = [
    {"name": "steady", "start_s": 0, "end_s": 2, "load": 1},
    {"name": "burst", "start_s": 2, "end_s": 3, "load": 2},
    {"name": "shipping_slow", "start_s": 3, "end_s": 4, "load": 1},
    {"name": "shipping_down", "start_s": 4, "end_s": 6, "load": 1},
    {"name": "shipping_back", "start_s": 6, "end_s": 8, "load": 1},
]


def order(n: int, phase: str, placed_s: float, accepted_ms: float | None, done_ms: float | None, outcome: str):
    placed = int(placed_s * S)
    return {
        "order_id": f"o{n}",
        "phase": phase,
        "placed_ns": placed,
        "accepted_ns": None if accepted_ms is None else placed + int(accepted_ms * 1e6),
        "done_ns": None if done_ms is None else placed + int(done_ms * 1e6),
        "outcome": outcome,
    }


SHAPE = {
    "spans_per_order": 13,
    "traces_per_order": 1,
    "services": ["a", "b"],
    "edges": [["a", "b"]],
    "needed_for_acceptance": ["a"],
}


def results(variant: str = "pubsub") -> dict:
    sync = [
        order(1, "steady", 0.5, 40, 40, "shipped"),
        order(2, "steady", 1.0, 60, 60, "shipped"),
        order(3, "burst", 2.5, None, None, "declined"),
        order(4, "shipping_down", 4.5, None, None, "failed"),
        order(5, "shipping_down", 5.0, None, None, "failed"),
    ]
    events = [
        order(1, "steady", 0.5, 2, 50, "shipped"),
        order(2, "steady", 1.0, 4, 70, "shipped"),
        order(3, "burst", 2.5, 2, None, "declined"),
        order(4, "shipping_down", 4.5, 3, 2500, "shipped"),  # done at 7.0 s: after shipping came back at 6 s
        order(5, "shipping_down", 5.0, 3, None, "lost"),
    ]
    return {
        "variant": variant,
        "started_ns": 0,
        "phases": PHASES,
        "sides": {"sync": {"orders": sync, "complexity": SHAPE}, "events": {"orders": events, "complexity": SHAPE}},
    }


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, None), ([5.0], 95, 5.0), ([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 95, 4), ([3, 1, 2], 50, 2)],
)
def test_percentile_is_nearest_rank(values, q, expected):
    assert page.percentile(values, q) == expected


def test_latencies_count_only_orders_that_got_there():
    orders = results()["sides"]["sync"]["orders"]
    assert page.accepted_ms(orders) == pytest.approx([40, 60])
    assert page.done_ms(results()["sides"]["events"]["orders"]) == pytest.approx([50, 70, 2500])


def test_the_outage_counts_orders_placed_while_shipping_was_down():
    document = results()
    assert page.outage(document, "sync") == {
        "placed": 2, "accepted": 0, "declined": 0, "failed": 2, "delayed": 0, "lost": 0
    }  # fmt: skip
    assert page.outage(document, "events") == {
        "placed": 2, "accepted": 2, "declined": 0, "failed": 0, "delayed": 1, "lost": 1
    }  # fmt: skip


def test_catch_up_runs_from_shipping_back_to_the_last_waiting_order_done():
    assert page.catch_up_s(results(), "events") == pytest.approx(1.0)
    assert page.catch_up_s(results(), "sync") == 0.0


def test_throughput_is_per_second_of_the_phase():
    assert page.throughput(results(), "sync", "steady") == (1.0, 1.0)
    assert page.throughput(results(), "sync", "burst") == (1.0, 0.0)


def test_the_table_has_a_column_per_side_and_one_row_per_figure():
    frame = page.table(results(), [results("pubsub"), results("stream")])
    assert list(frame.columns) == [
        "aspect", "measure", "Synchronous (HTTP)", "Event-driven (Pub/Sub)", "Event-driven (Redis Stream)"
    ]  # fmt: skip
    row = frame.set_index("measure").loc["lost (paid, never shipped)"]
    assert (row["Synchronous (HTTP)"], row["Event-driven (Pub/Sub)"]) == ("0", "1")
    accepted = frame.set_index("measure").loc["order accepted, p50"]
    assert accepted["Synchronous (HTTP)"] == "40.0 ms" and accepted["Event-driven (Pub/Sub)"] == "3.0 ms"
    assert set(frame["aspect"]) == {"Latency", "Coupling", "Fault tolerance", "Complexity", "Scalability"}


def test_an_unknown_variant_gets_a_column_of_its_own():
    frame = page.table(results(), [results("kafka")])
    assert "Event-driven (kafka)" in frame.columns


def test_the_phases_frame_counts_each_sides_orders():
    frame = page.phases_frame(results())
    assert list(frame["phase"]) == ["steady", "burst", "shipping slow", "shipping down", "shipping back"]
    assert list(frame["Synchronous (HTTP)"]) == [2, 1, 0, 2, 0]


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ([], "not a JSON object"),
        ({"phases": []}, "no start time"),
        ({**results(), "phases": PHASES[:2]}, "the phases lack"),
        ({**results(), "sides": {"sync": {}}}, "not both there"),
        ({**results(), "sides": {**results()["sides"], "sync": {"orders": [{"order_id": "x"}], "complexity": SHAPE}}},
         "an order of the sync side"),
        ({**results(), "sides": {**results()["sides"], "events": {"orders": [], "complexity": {}}}},
         "the events side's span tally"),
    ],
)  # fmt: skip
def test_an_unusable_results_document_is_named_not_drawn(document, named):
    assert named in page.problem(document)


def test_a_whole_results_document_is_usable():
    assert page.problem(results()) is None


def test_a_comparison_run_asks_for_its_variant_and_its_results(tmp_path):
    args = run_arguments("sync_vs_events", tmp_path / "t.jsonl", 20.0, 1, tmp_path / "r.json", ("--variant", "stream"))
    assert args == [
        "scenario", "run", "sync_vs_events", "--truth", str(tmp_path / "t.jsonl"), "--variant", "stream",
        "--results", str(tmp_path / "r.json"), "--seconds", "20", "--seed", "1",
    ]  # fmt: skip
