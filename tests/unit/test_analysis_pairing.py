"""Pairing, latency, duplicates and trace search over a small in-memory store, against plain Python.

Each consumer span below is paired a different way (span link, parent, event id, not at all), so
the pairing's producer columns, the latency figures read from one set of samples, the two-step
duplicate search and the two-step trace search are checked against what the definitions say.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from collectors.analyses import duplicates, latency, traces
from collectors.analyses.deliveries import DELIVERIES
from collectors.analyses.filters import Filters, bind
from collectors.ingest.otlp import SPAN_COLUMNS
from collectors.storage import pairing
from collectors.storage.store import SCHEMA

MS = 1_000_000


def _span(trace: str, span: str, kind: str, t: int, **fields) -> tuple:
    row = {"Timestamp": t, "TraceId": trace, "SpanId": span, "ParentSpanId": "", "TraceState": "",
           "SpanName": f"{kind} shop.orders", "SpanKind": kind, "ServiceName": "orders", "ResourceAttributes": "{}",
           "ScopeName": "t", "ScopeVersion": "", "SpanAttributes": "{}", "Duration": 2 * MS, "StatusCode": "Unset",
           "StatusMessage": "", "Events": "[]", "Links": "[]", "MsgDestination": "shop.orders",
           "CeType": "shop.order.placed", **fields}  # fmt: skip
    return tuple(row.get(column) for column in SPAN_COLUMNS)


@pytest.fixture
def store():
    conn = duckdb.connect()
    conn.execute(SCHEMA)
    p = "Producer"
    c = "Consumer"
    rows = [
        _span("t1", "p1", p, 100 * MS, MsgMessageId="e1", ServiceName="orders"),
        _span("t1", "p1b", p, 90 * MS, MsgMessageId="e9", ServiceName="audit", CeType="shop.audit"),
        _span("t2", "c1", c, 105 * MS, MsgMessageId="e1", MsgConsumerGroup="inventory", ServiceName="inventory",
              Duration=3 * MS, Outcome="processed"),
        _span("t1", "c2", c, 108 * MS, ParentSpanId="p1", MsgMessageId="e1", MsgConsumerGroup="payments",
              ServiceName="payments", Duration=7 * MS, Outcome="processed"),
        _span("t3", "p3", p, 200 * MS, MsgMessageId="e3", ServiceName="orders"),
        _span("t3", "p3b", p, 150 * MS, MsgMessageId="e3", ServiceName="orders-again"),
        _span("t4", "c3", c, 140 * MS, MsgMessageId="e3", MsgConsumerGroup="inventory", ServiceName="inventory",
              Duration=1 * MS, Outcome="processed", CeType=None),
        _span("t5", "c4", c, 300 * MS, MsgMessageId="e4", MsgConsumerGroup="inventory", ServiceName="inventory",
              Duration=4 * MS, StatusCode="Error", CeType="shop.order.cancelled"),
        _span("t6", "c5", c, 141 * MS, MsgMessageId="e3", MsgConsumerGroup="inventory", ServiceName="inventory",
              Duration=1 * MS, Outcome="duplicate_skipped"),
    ]  # fmt: skip
    conn.executemany(f"INSERT INTO otel_traces VALUES ({', '.join('?' * len(SPAN_COLUMNS))})", rows)
    conn.execute("INSERT INTO span_links VALUES ('t2', 'c1', 't1', 'p1b'), ('t2', 'c1', 't1', 'p1')")
    pairing.rebuild(conn)
    yield conn
    conn.close()


def _deliveries(cursor, filters: Filters | None = None) -> dict:
    filters = filters or Filters()
    cursor.execute(DELIVERIES, bind(DELIVERIES, filters.values()))
    names = [d[0] for d in cursor.description]
    return {row[1]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def test_each_consumer_span_is_paired_with_one_producer_and_its_columns(store):
    found = _deliveries(store)
    assert {
        k: (d["paired_by"], d["producer_span"], d["producer_service"], d["producer_t"]) for k, d in found.items()
    } == {
        "c1": ("link", "p1b", "audit", 90 * MS),  # the earliest linked producer
        "c2": ("parent", "p1", "orders", 100 * MS),
        "c3": ("message_id", "p3b", "orders-again", 150 * MS),  # the earliest of the id on the channel
        "c5": ("message_id", "p3b", "orders-again", 150 * MS),
        "c4": (None, None, None, None),
    }
    assert found["c3"]["type"] == "shop.order.placed"  # taken from the producer when the consumer has none
    assert found["c4"]["outcome"] == "failed" and found["c4"]["failed"]
    assert set(_deliveries(store, Filters(type="shop.order.placed"))) == {"c1", "c2", "c3", "c5"}


def test_latency_figures_match_the_definitions(store):
    answer = latency.latency(store, Filters(), bucket_s=1, by="group")
    delivery = {"inventory": [15.0, -10.0, -9.0], "payments": [8.0]}
    processing = {"inventory": [3.0, 1.0, 4.0, 1.0], "payments": [7.0]}
    summary = {(s["key"], s["measure"]): s for s in answer["summary"]}
    for measure, samples in (("delivery", delivery), ("processing", processing)):
        for key, values in samples.items():
            figures = summary[(key, measure)]
            assert figures["count"] == len(values)
            assert figures["p50_ms"] == pytest.approx(np.quantile(values, 0.5))
            assert figures["p99_ms"] == pytest.approx(np.quantile(values, 0.99))
    assert answer["negative_delivery"] == 2
    keys = [(s["key"], s["measure"]) for s in answer["summary"]]
    assert keys == sorted(keys)
    buckets = [(b["t_ns"], b["key"], b["measure"]) for b in answer["buckets"]]
    assert buckets == sorted(buckets)
    assert sum(b["count"] for b in answer["buckets"]) == sum(s["count"] for s in answer["summary"])
    assert len(answer["samples"]) == sum(s["count"] for s in answer["summary"])
    by_type = latency.latency(store, Filters(), by="type")
    assert all(s["key"] is not None for s in by_type["summary"])


def test_duplicates_gathered_only_for_ids_seen_twice(store):
    answer = duplicates.duplicates(store, Filters())
    assert answer["duplicates"] == [
        {"vantage": "inventory", "channel": "shop.orders", "event_id": "e3", "copies": 2, "handled": 1,
         "processed": 0, "trace_ids": ["t4", "t6"], "redeliveries": 0}
    ]  # fmt: skip
    assert answer["by_group"] == [{"vantage": "inventory", "handled": 1, "processed": 0, "redeliveries": 0}]


def test_trace_search_summarises_the_newest_matching_traces(store):
    newest = traces.search(store, Filters(), None, None, None, None, 2)
    assert [t["trace_id"] for t in newest] == ["t5", "t3"]
    assert newest[1] == {"trace_id": "t3", "start_ns": 150 * MS, "duration_ms": 52.0, "spans": 2, "errors": 0,
                         "services": ["orders", "orders-again"], "root_name": "Producer shop.orders"}  # fmt: skip
    errors = traces.search(store, Filters(service="inventory"), True, None, None, None, 10)
    assert [t["trace_id"] for t in errors] == ["t5"]


def _components(edges: list[tuple[str, str]]) -> dict[str, str]:
    """Plain union-find: each trace touching a cross-trace link, named by its component's smallest id."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        if a != b:
            ra, rb = find(a), find(b)
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


@pytest.mark.parametrize("seed", range(12))
def test_flows_are_the_link_components_named_by_their_smallest_trace(seed):
    rng = np.random.default_rng(seed)
    traces_ = [f"t{i:03d}" for i in rng.permutation(60)]
    edges = []
    for _ in range(int(rng.integers(1, 80))):
        a, b = rng.choice(traces_, 2)
        edges.append((str(a), str(b)))
    chain = traces_[:8]  # a long chain, linked from its far end backwards, so names travel many steps
    edges += [(chain[i + 1], chain[i]) for i in range(len(chain) - 1)]
    conn = duckdb.connect()
    conn.execute(SCHEMA)
    conn.executemany(
        "INSERT INTO span_links (TraceId, SpanId, LinkedTraceId, LinkedSpanId) VALUES (?, 's', ?, 'l')", edges
    )
    got = dict(conn.execute(latency.FLOWS).fetchall())
    assert got == _components(edges)
