"""Pure transforms and chart builders: from API answers to what the pages show."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dashboard import colors, formats
from dashboard.client import ApiClient
from dashboard.sample_cli import environment
from dashboard.scenario_runner import read_truth, run_arguments
from dashboard.views import (
    broker_transforms,
    dead_letters_transforms,
    duplicates_transforms,
    event_transforms,
    instrumentation_transforms,
    latency_transforms,
    ordering_transforms,
    overview_transforms,
    traces_transforms,
)

FLOW = {
    "nodes": [
        {"id": "service:orders", "kind": "service", "label": "orders"},
        {"id": "channel:shop.orders", "kind": "channel", "label": "shop.orders"},
        {"id": "service:inventory", "kind": "service", "label": "inventory"},
        {"id": "channel:shop.stock", "kind": "channel", "label": "shop.stock"},
        {"id": "service:payments", "kind": "service", "label": "payments"},
    ],
    "edges": [
        {"source": "service:orders", "target": "channel:shop.orders", "kind": "publish", "count": 100,
         "rate_per_s": 10.0, "errors": 0, "p95_ms": None, "gaps": 2, "duplicates": 0},
        {"source": "channel:shop.orders", "target": "service:inventory", "kind": "deliver", "count": 99,
         "rate_per_s": 9.9, "errors": 1, "p95_ms": 4.2, "gaps": 0, "duplicates": 3},
        {"source": "service:inventory", "target": "channel:shop.stock", "kind": "publish", "count": 99,
         "rate_per_s": 9.9, "errors": 0, "p95_ms": None, "gaps": 0, "duplicates": 0},
        {"source": "channel:shop.stock", "target": "service:payments", "kind": "deliver", "count": 99,
         "rate_per_s": 9.9, "errors": 0, "p95_ms": 2.0, "gaps": 0, "duplicates": 0},
        {"source": "service:orders", "target": "service:inventory", "kind": "link", "count": 99,
         "rate_per_s": 9.9, "errors": 0, "p95_ms": 5.0, "gaps": 0, "duplicates": 0},
    ],
}  # fmt: skip


def span(span_id: str, parent: str, start: int, duration: int, service: str = "orders", **extra) -> dict:
    return {
        "span_id": span_id, "parent_span_id": parent, "start_ns": start, "duration_ns": duration, "service": service,
        "name": f"op {span_id}", "kind": "Internal", "status": extra.pop("status", "Unset"),
        "attributes": extra.pop("attrs", {}), "links": extra.pop("links", []),
    }  # fmt: skip


def stream_row(vantage: str, partitionkey: str, missing: int, duplicates: int = 0) -> dict:
    return {"vantage": vantage, "channel": "c", "source": "/a", "partitionkey": partitionkey, "missing": missing,
            "duplicates": duplicates, "out_of_order": 0}  # fmt: skip


def duplicate(vantage: str, event_id: str, handled: int, processed: int) -> dict:
    return {"vantage": vantage, "channel": "c", "event_id": event_id, "copies": 2, "handled": handled,
            "processed": processed, "trace_ids": []}  # fmt: skip


@pytest.mark.parametrize(
    ("ms", "text"), [(None, "–"), (0.25, "250 µs"), (12.345, "12.3 ms"), (-3.0, "-3.0 ms"), (12_500.0, "12.5 s")]
)
def test_durations_read_well(ms, text):
    assert formats.format_ms(ms) == text


@pytest.mark.parametrize(("value", "text"), [(None, "–"), (1234567, "1,234,567"), (12.0, "12"), (3.14159, "3.1")])
def test_counts_read_well(value, text):
    assert formats.format_count(value) == text


def test_flow_layers_follow_publish_and_deliver_edges():
    assert overview_transforms.flow_layers(FLOW) == {
        "service:orders": 0,
        "channel:shop.orders": 1,
        "service:inventory": 2,
        "channel:shop.stock": 3,
        "service:payments": 4,
    }


def test_flow_layers_survive_a_cycle():
    cyclic = {
        "nodes": [{"id": "service:a"}, {"id": "channel:c"}],
        "edges": [
            {"source": "service:a", "target": "channel:c", "kind": "publish"},
            {"source": "channel:c", "target": "service:a", "kind": "deliver"},
        ],
    }
    assert set(overview_transforms.flow_layers(cyclic)) == {"service:a", "channel:c"}


def test_a_compensation_path_back_to_an_earlier_service_does_not_push_the_flow_apart():
    """inventory -> stock -> payments -> payments channel -> inventory again: the edge closing the cycle runs
    back, and every node keeps the column its forward path gives it."""
    edges = [("service:orders", "channel:orders"), ("channel:orders", "service:inventory"),
             ("service:inventory", "channel:stock"), ("channel:stock", "service:payments"),
             ("service:payments", "channel:payments"), ("channel:payments", "service:inventory"),
             ("channel:payments", "service:shipping")]  # fmt: skip
    flow = {
        "nodes": [{"id": n} for n in sorted({n for edge in edges for n in edge})],
        "edges": [
            {"source": s, "target": t, "kind": "publish" if s.startswith("service") else "deliver"} for s, t in edges
        ],
    }
    assert overview_transforms.flow_layers(flow) == {
        "service:orders": 0, "channel:orders": 1, "service:inventory": 2, "channel:stock": 3,
        "service:payments": 4, "channel:payments": 5, "service:shipping": 6,
    }  # fmt: skip


def test_edges_carry_rate_p95_and_badges():
    label = overview_transforms.edge_label(FLOW["edges"][1])
    assert label == "9.9/s · p95 4.2 ms<br>⚠ 3 dups ⚠ 1 err"
    assert overview_transforms.edge_badges(FLOW["edges"][0]) == "⚠ 2 gaps"
    texts = [t for trace in overview_transforms.flow_figure(FLOW).data for t in (trace.text or ())]
    assert label in texts  # a line break on the chart, not the text "<br>"


def test_edge_table_puts_problems_first():
    frame = overview_transforms.flow_edges_frame(FLOW)
    assert list(frame["to"])[:2] == ["inventory", "shop.orders"]


def test_clicking_a_node_filters_on_it():
    assert overview_transforms.selection_filter("channel:shop.orders") == ("channel", "shop.orders")
    assert overview_transforms.selection_filter("service:inventory") == ("service", "inventory")
    assert overview_transforms.selection_filter("broker:x") is None


def test_flow_figure_has_every_node_clickable():
    figure = overview_transforms.flow_figure(FLOW)
    custom = [c for trace in figure.data if trace.customdata is not None for c in trace.customdata]
    assert {n["id"] for n in FLOW["nodes"]} <= set(custom)


def test_colours_are_stable_and_shared_by_name():
    assert colors.color_for("inventory") == colors.color_for("inventory")
    assert colors.color_for("inventory") in colors.PALETTE
    assert colors.color_for(None) == colors.NEUTRAL
    palette = {"shop.orders": colors.PALETTE[3]}
    figure = broker_transforms.subscribers_per_channel(broker_transforms.broker_channels_frame(
        {"latest": {"channels": [{"channel": "shop.orders", "subscribers": 2}]}}
    ), palette)  # fmt: skip
    assert figure.data[0].marker.color == colors.PALETTE[3]


NAMES = [f"service-{n}" for n in range(12)] + ["shop.orders", "shop.stock", "a<b>"]


def test_the_names_a_system_has_get_distinct_colours_whatever_their_order():
    palette = colors.assign(NAMES)
    assert len(set(palette.values())) == len(NAMES)
    assert colors.assign(reversed(NAMES)) == palette
    assert colors.assign([*NAMES, "", "shop.orders"]) == palette
    kept = [name for name in NAMES if palette[name] == colors.color_for(name)]
    assert kept, "a name keeps its hashed colour unless an earlier name took it"


def test_more_names_than_colours_still_get_a_colour_each():
    names = [f"n{n}" for n in range(3 * len(colors.PALETTE))]
    palette = colors.assign(names)
    assert set(palette) == set(names) and set(palette.values()) == set(colors.PALETTE)


def test_charts_colour_each_name_from_the_palette():
    palette = colors.assign(NAMES)
    frame = pd.DataFrame({"time": [pd.Timestamp(0)] * 2, "key": ["a<b>", "shop.orders"], "p95_ms": [1.0, 2.0],
                          "count": [1, 1]})  # fmt: skip
    figure = latency_transforms.latency_over_time(frame, "p95", "delivery", palette)
    shown = {trace.name: trace.line.color for trace in figure.data}
    assert shown == {"a&lt;b&gt;": palette["a<b>"], "shop.orders": palette["shop.orders"]}


def test_waterfall_nests_children_under_parents_and_marks_links_and_the_critical_path():
    trace = {
        "trace_id": "t1",
        "spans": [
            span("b", "a", 2_000_000, 1_000_000, "inventory", links=[{"trace_id": "t0", "span_id": "p"}]),
            span("a", "", 1_000_000, 5_000_000),
            span("c", "a", 1_500_000, 1_000_000, status="Error"),
        ],
        "links_out": [{"span_id": "b", "trace_id": "t0", "linked_span_id": "p"}],
        "links_in": [
            {"span_id": "x", "linked_trace_id": "t9", "linked_span_id": "a", "service": "pay", "name": "process"}
        ],
        "critical_path": ["a", "b"],
    }
    frame = traces_transforms.waterfall_frame(trace)
    assert list(frame["span_id"]) == ["a", "c", "b"]
    assert list(frame["depth"]) == [0, 1, 1]
    assert list(frame["start_ms"]) == [0.0, 0.5, 1.0]
    assert list(frame["critical"]) == [True, False, True]
    assert list(frame["error"]) == [False, True, False]
    assert list(frame["links_out"]) == [0, 0, 1]
    assert list(frame["links_in"]) == [1, 0, 0]
    assert traces_transforms.linked_traces(trace) == ["t0", "t9"]
    assert list(traces_transforms.links_in_frame(trace)["from"]) == ["pay: process"]
    assert len(traces_transforms.waterfall(frame).data) == 2  # one bar trace per service


def test_waterfall_keeps_spans_whose_parent_is_in_another_trace():
    frame = traces_transforms.waterfall_frame({"trace_id": "t", "spans": [span("a", "elsewhere", 0, 10)]})
    assert list(frame["depth"]) == [0]


def test_stream_choices_put_troubled_streams_first_and_the_bus_first_among_vantages():
    report = {
        "streams": [
            stream_row("inventory", "p0", 0, duplicates=9),
            stream_row("bus", "p0", 0),
            stream_row("bus", "p1", 2),
        ]
    }  # fmt: skip
    streams = ordering_transforms.stream_choices(report)
    assert [s["partitionkey"] for s in streams] == ["p1", "p0"]
    assert streams[1]["vantages"] == ["bus", "inventory"]
    assert ordering_transforms.stream_label(streams[0]) == "c · /a · p1  (2 missing)"


def test_arrivals_say_what_each_arrival_was():
    frame = ordering_transforms.arrivals_frame(
        {"arrivals": [
            {"t_ns": 1, "sequence": 1, "event_id": "a", "late": False, "duplicate": False},
            {"t_ns": 2, "sequence": 3, "event_id": "c", "late": False, "duplicate": False},
            {"t_ns": 3, "sequence": 2, "event_id": "b", "late": True, "duplicate": False},
            {"t_ns": 4, "sequence": 2, "event_id": "b", "late": False, "duplicate": True},
        ]}
    )  # fmt: skip
    assert list(frame["arrival"]) == ["in order", "in order", "late", "duplicate"]
    figure = ordering_transforms.sequence_timeline(frame, [[4, 5]], [[4, 5]], "bus")
    assert any("lost 4–5" in (a.text or "") for a in figure.layout.annotations)


def test_duplicates_name_the_bug():
    frame = duplicates_transforms.duplicates_frame(
        {"duplicates": [
            duplicate("inventory", "a", handled=1, processed=1),
            duplicate("payments", "b", handled=0, processed=2),
            duplicate("bus", "a", handled=0, processed=0),
        ]}
    )  # fmt: skip
    assert list(frame["verdict"]) == ["processed twice (bug)", "handled by the idempotency guard", "published twice"]


def test_loss_says_where_in_words():
    frame = ordering_transforms.loss_frame(
        {"lost": [{"channel": "c", "source": "/a", "partitionkey": None, "sequence": 4, "event_id": None,
                   "vantage": "bus", "where": "before_broker"}]}
    )  # fmt: skip
    assert frame.iloc[0]["where"].startswith("before the broker")


def test_event_timeline_orders_publish_bus_and_deliveries():
    event = {
        "published": [{"start_ns": 1, "service": "orders"}],
        "bus": [{"arrival_ns": 2, "channel": "shop.orders"}],
        "deliveries": [{"group": "inventory", "start_ns": 3, "outcome": "dead_lettered", "attempts": 3, "retries": []}],
    }
    assert [text for _, text in event_transforms.event_timeline(event)] == [
        "published by orders",
        "seen on the bus (shop.orders)",
        "inventory: dead_lettered after 3 attempt(s)",
    ]


def test_truth_file_skips_half_written_lines(tmp_path):
    path = tmp_path / "truth.jsonl"
    path.write_text(json.dumps({"fault": "reorder", "event_id": "a"}) + "\n" + '{"fault": "dup')
    assert read_truth(path) == [{"fault": "reorder", "event_id": "a"}]
    assert read_truth(tmp_path / "none.jsonl") == []


def test_scenario_command_line_follows_the_contract(tmp_path):
    assert run_arguments("duplicates", tmp_path / "t.jsonl", 30.0, 7) == [
        "scenario", "run", "duplicates", "--truth", str(tmp_path / "t.jsonl"), "--seconds", "30", "--seed", "7",
    ]  # fmt: skip


def test_scenarios_send_spans_to_the_collectors_unless_told_otherwise():
    assert environment({"EVENTSCOPE_API": "http://127.0.0.1:9"})["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:9"
    env = environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "REDIS_URL": "redis://r/0"})
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://x:4318"
    assert env["REDIS_URL"] == "redis://r/0"


def test_client_urls_drop_empty_parameters():
    client = ApiClient("http://h:1/")
    assert client.url("loss", {"channel": "", "group": None, "since_ns": 5}) == "http://h:1/api/v1/loss?since_ns=5"


def test_retried_frame_is_newest_first_with_its_backoff():
    answer = {
        "retried": [
            {"t_ns": 1, "group": "payments", "outcome": "processed", "attempts": 2, "failed_attempts": 1,
             "retries": [{"attempt": 1, "delay_ms": 12.5}], "event_id": "a"},
            {"t_ns": 2, "group": "payments", "outcome": "dead_lettered", "attempts": 4, "failed_attempts": 4,
             "retries": [{"attempt": n, "delay_ms": d} for n, d in ((1, 10.0), (2, 20.0), (3, 40.0), (4, 0.0))],
             "event_id": "b"},
        ]
    }  # fmt: skip
    frame = dead_letters_transforms.retried_frame(answer)
    assert list(frame["event_id"]) == ["b", "a"]
    assert list(frame["backoff"]) == ["10.0 ms → 20.0 ms → 40.0 ms", "12.5 ms"]  # no wait after the last attempt
    assert dead_letters_transforms.retried_frame({"retried": []}).empty


def test_clock_skew_frame_names_both_services():
    answer = {"pairs": [{"producer_service": "orders", "consumer_service": "inventory", "count": 3, "min_ms": -801.5,
                         "p50_ms": -799.0}]}  # fmt: skip
    row = latency_transforms.clock_skew_frame(answer).iloc[0].to_dict()
    assert row == {"producer service": "orders", "consumer service": "inventory", "deliveries": 3,
                   "most negative": "-801.5 ms", "median": "-799.0 ms"}  # fmt: skip


def test_a_redelivered_event_is_not_called_a_duplicate():
    frame = duplicates_transforms.duplicates_frame(
        {"duplicates": [duplicate("worker", "retried", 0, 0) | {"redeliveries": 1},
                        duplicate("worker", "twice", 0, 0) | {"copies": 3, "redeliveries": 1}]}
    )  # fmt: skip
    assert dict(zip(frame["event_id"], frame["verdict"], strict=True)) == {
        "retried": "redelivered after a failed attempt (not a duplicate)",
        "twice": "handled by the idempotency guard",
    }
    groups = duplicates_transforms.by_group_frame({"by_group": [{"vantage": "worker", "handled": 0, "processed": 0,
                                                      "redeliveries": 2}]})  # fmt: skip
    assert list(groups["kind"])[-1] == duplicates_transforms.REDELIVERED and list(groups["count"])[-1] == 2


def test_blind_spots_say_what_cannot_be_seen_and_how():
    health = {"blind_spots": [{"kind": "unenveloped", "count": 7, "where": ["app.prices"],
                               "cannot_see": ["duplicates", "gaps"], "how": "Wrap them."}]}  # fmt: skip
    row = instrumentation_transforms.blind_spots_frame(health).iloc[0].to_dict()
    assert row == {"what": "messages without an envelope (no id, no sequence)", "count": 7,
                   "cannot see": "duplicates, gaps", "how to see it": "Wrap them.", "where": "app.prices"}  # fmt: skip
    assert instrumentation_transforms.blind_spots_frame({}).empty


def test_tapped_channels_are_every_channel_node_with_messages():
    flow = {"nodes": [
        {"id": "service:a", "kind": "service", "label": "a"},
        {"id": "channel:q", "kind": "channel", "label": "q", "messages": 0, "rate_per_s": 0.0},
        {"id": "channel:p", "kind": "channel", "label": "p", "messages": 7, "rate_per_s": 3.5},
    ]}  # fmt: skip
    frame = broker_transforms.tapped_channels_frame(flow)
    assert frame.to_dict("records") == [{"channel": "p", "messages": 7, "messages/s": 3.5}]
    assert broker_transforms.tapped_channels_frame({}).empty


def test_slow_consumers_frame_is_newest_first_with_durations_for_people():
    answer = {"slow": [
        {"group": "view", "start_ns": 0, "end_ns": 2_000_000_000, "deliveries": 40, "first_p50_ms": 300.0,
         "peak_p50_ms": 2200.0, "peers_p50_ms": 1.5, "max_ms": 12_500.0, "channels": ["shop.orders"]},
        {"group": "payments", "start_ns": 5_000_000_000, "end_ns": 7_000_000_000, "deliveries": 9,
         "first_p50_ms": 250.0, "peak_p50_ms": 260.0, "peers_p50_ms": 2.0, "max_ms": 300.0, "channels": []},
    ]}  # fmt: skip
    frame = latency_transforms.slow_consumers_frame(answer)
    assert list(frame["group"]) == ["payments", "view"]
    assert frame.iloc[1][["from", "worst median", "slowest"]].tolist() == ["00:00:00.000", "2,200.0 ms", "12.5 s"]
    assert latency_transforms.slow_consumers_frame({"slow": []}).empty


def test_refused_requests_are_listed_per_reason_with_what_to_do():
    health = {"ingest": {"refused": 5, "refused_by_reason": {"body_too_large": 1, "unsupported_media": 3, "x": 1}}}
    frame = instrumentation_transforms.refusals_frame(health)
    assert list(frame["reason"]) == ["unsupported_media", "body_too_large", "x"]
    assert list(frame["requests"]) == [3, 1, 1]
    assert "EVENTSCOPE_MAX_BODY_BYTES" in frame["what to do"][1]
    assert frame["what to do"][2]  # a reason this dashboard does not know still says where to look
    assert instrumentation_transforms.refusals_frame({"ingest": {"refused": 0, "refused_by_reason": {}}}).empty


def test_overview_shows_every_message_kind_and_redeliveries():
    shown = {label for label, _, _ in overview_transforms.overview_numbers({})}
    assert {"Bus messages", "CloudEvents", "Unenveloped", "Redeliveries"} <= shown


def test_cluster_nodes_list_silent_ones_first_then_primaries_then_replicas():
    nodes = {
        "10.0.0.2:7001": {"up": True, "role": "slave", "connected_clients": 3, "numpat": 0},
        "10.0.0.1:7000": {"up": True, "role": "master", "connected_clients": 5, "numpat": 1, "spublish_calls": 9},
        "10.0.0.3:7002": {"up": False, "error": "ConnectionError: refused"},
        "garbage": "not a node",
    }
    frame = broker_transforms.cluster_nodes_frame({"latest": {"info": {"nodes": nodes}}})
    assert list(frame["node"]) == ["10.0.0.3:7002", "10.0.0.1:7000", "10.0.0.2:7001"]
    assert list(frame["role"]) == ["not answering", "primary", "replica"]
    assert frame.iloc[0]["error"] == "ConnectionError: refused" and frame.iloc[1]["SPUBLISH calls"] == 9
    assert broker_transforms.cluster_nodes_frame({"latest": {"info": {"used_memory": 1}}}).empty
    assert broker_transforms.cluster_nodes_frame({}).empty
