"""Identity without an index: a retried or overlapping export stores each span and link, each metric point
(its series and times) and each log record (all of its fields) once."""

from __future__ import annotations

import json

import pytest

from collectors.ingest.logs import LOG_COLUMNS
from collectors.ingest.metrics import METRIC_COLUMNS
from collectors.ingest.otlp import SPAN_COLUMNS
from collectors.storage.store import Store
from tests.store_engines import ENGINES, open_store


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


@pytest.fixture(params=ENGINES)
def store(request, tmp_path):
    store = open_store(request.param, tmp_path)
    yield store
    store.close()


def counts(store: Store) -> tuple[int, int]:
    cursor = store.reader()
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


def point(t: int, value: float, channel: str = "shop.orders", start: int = 0) -> tuple:
    row = dict.fromkeys(METRIC_COLUMNS)
    row.update(
        ResourceAttributes='{"service.name":"svc"}', ResourceSchemaUrl="", ScopeName="s", ScopeVersion="",
        ScopeAttributes="{}", ScopeSchemaUrl="", ServiceName="svc", MetricName="messaging.client.sent.messages",
        MetricDescription="", MetricUnit="{message}", MetricType="sum", Attributes=json.dumps({"channel": channel}),
        StartTimeUnix=start, TimeUnix=t, Value=value, Flags=0, Exemplars="[]",
    )  # fmt: skip
    return tuple(row.values())


def record(t: int, body: str, trace: str = "") -> tuple:
    row = dict.fromkeys(LOG_COLUMNS, "")
    row.update(Timestamp=t, ObservedTimestamp=t, TraceFlags=0, SeverityNumber=9, Body=body, TraceId=trace)
    for column in ("ResourceAttributes", "ScopeAttributes", "LogAttributes"):
        row[column] = "{}"
    return tuple(row.values())


def stored(store: Store, sql: str) -> list[tuple]:
    cursor = store.reader()
    try:
        return cursor.execute(sql).fetchall()
    finally:
        cursor.close()


def test_a_retried_metric_export_stores_each_point_once(store):
    batch = [point(100, 1.0), point(100, 4.0, channel="shop.stock"), point(200, 2.0)]
    store.write("otel_metrics", batch)
    store.write("otel_metrics", batch + [point(300, 3.0)])  # the retry and one new point in one batch
    store.write("otel_metrics", [point(200, 2.0), point(200, 2.0)])  # twice within one batch
    rows = stored(store, "SELECT TimeUnix, Value FROM otel_metrics ORDER BY TimeUnix, Value")
    assert rows == [(100, 1.0), (100, 4.0), (200, 2.0), (300, 3.0)]


def test_a_point_of_the_same_series_is_new_when_its_times_differ(store):
    store.write("otel_metrics", [point(100, 1.0)])
    store.write("otel_metrics", [point(100, 1.0, start=50), point(101, 1.0)])
    assert stored(store, "SELECT count(*) FROM otel_metrics") == [(3,)]


def test_a_retried_log_export_stores_each_record_once(store):
    batch = [record(10, "email sent", trace="ab" * 16), record(10, "email failed"), record(11, "email sent")]
    store.write("otel_logs", batch)
    store.write("otel_logs", batch[1:] + [record(12, "email sent")])
    rows = stored(store, "SELECT Timestamp, Body FROM otel_logs ORDER BY Timestamp, Body")
    assert rows == [(10, "email failed"), (10, "email sent"), (11, "email sent"), (12, "email sent")]
