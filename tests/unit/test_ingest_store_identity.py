"""Span identity without an index: a retried or overlapping export stores each span and link once."""

from __future__ import annotations

import json

import pytest

from collectors.otlp import SPAN_COLUMNS
from collectors.store import Store


def span(trace: int, span_id: int, start: int, linked: tuple[int, int] | None = None) -> tuple:
    row = dict.fromkeys(SPAN_COLUMNS)
    links = [] if linked is None else [{"TraceId": f"{linked[0]:032x}", "SpanId": f"{linked[1]:016x}"}]
    row.update(
        Timestamp=start,
        TraceId=f"{trace:032x}",
        SpanId=f"{span_id:016x}",
        ParentSpanId="",
        TraceState="",
        SpanName="process t",
        SpanKind="Consumer",
        ServiceName="svc",
        ResourceAttributes="{}",
        ScopeName="",
        ScopeVersion="",
        SpanAttributes="{}",
        Duration=1,
        StatusCode="Unset",
        StatusMessage="",
        Events="[]",
        Links=json.dumps(links),
    )
    return tuple(row.values())


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "store.duckdb"))
    yield store
    store.close()


def counts(store: Store) -> tuple[int, int]:
    cursor = store.cursor()
    try:
        (spans,) = cursor.execute("SELECT count(*) FROM otel_traces").fetchall()[0]
        (links,) = cursor.execute("SELECT count(*) FROM span_links").fetchall()[0]
        return spans, links
    finally:
        cursor.close()


def test_a_retried_batch_stores_nothing_twice(store):
    batch = [span(1, n, 1_000 + n, linked=(9, n)) for n in range(1, 6)]
    store.write("otel_traces", batch)
    store.write("otel_traces", batch)
    assert counts(store) == (5, 5)


def test_an_overlapping_batch_stores_only_the_new_spans_and_their_links(store):
    store.write("otel_traces", [span(1, n, 1_000 + n, linked=(9, n)) for n in range(1, 4)])
    store.write("otel_traces", [span(1, n, 1_000 + n, linked=(9, n)) for n in range(2, 7)])
    assert counts(store) == (6, 6)


def test_the_same_span_twice_in_one_batch_is_stored_once(store):
    store.write("otel_traces", [span(1, 1, 5, linked=(9, 1)), span(1, 1, 5, linked=(9, 1)), span(1, 2, 6)])
    assert counts(store) == (2, 1)


def test_an_old_span_retried_among_new_ones_is_still_recognised(store):
    store.write("otel_traces", [span(1, 1, 10)] + [span(2, n, 1_000_000 + n) for n in range(1, 100)])
    store.write("otel_traces", [span(1, 1, 10), span(3, 1, 2_000_000)])
    assert counts(store)[0] == 101
