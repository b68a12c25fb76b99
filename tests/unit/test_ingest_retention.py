"""Retention drops whole traces by age and by span count, and never the newest data."""

from __future__ import annotations

import pytest

from collectors.ingest.otlp import SPAN_COLUMNS
from collectors.storage.schema import BUS_COLUMNS
from collectors.storage.store import Store
from tests.store_engines import ENGINES, open_store

S = 1_000_000_000


def span(trace: int, index: int, start_s: float, links: str = "[]") -> tuple:
    values = dict.fromkeys(SPAN_COLUMNS)
    values.update(
        Timestamp=int(start_s * S),
        TraceId=f"{trace:032x}",
        SpanId=f"{trace:08x}{index:08x}",
        ParentSpanId="",
        TraceState="",
        SpanName=f"s{index}",
        SpanKind="Internal",
        ServiceName="svc",
        ResourceAttributes="{}",
        ScopeName="",
        ScopeVersion="",
        SpanAttributes="{}",
        Duration=S,
        StatusCode="Unset",
        StatusMessage="",
        Events="[]",
        Links=links,
    )
    return tuple(values[c] for c in SPAN_COLUMNS)


def bus(arrival_s: float) -> tuple:
    values = dict.fromkeys(BUS_COLUMNS)
    values.update(ArrivalNs=int(arrival_s * S), ArrivalSeq=0, Channel="c", Pattern="*", Size=1, Valid=False)
    values.update(Error="x", Payload="x")
    return tuple(values[c] for c in BUS_COLUMNS)


@pytest.fixture(params=ENGINES)
def store(request, tmp_path):
    store = open_store(request.param, tmp_path)
    # trace 1: spans at 0 s and 50 s (ends 51 s); trace 2: 10 s and 20 s (ends 21 s); trace 3: 100 s (newest)
    link = f'[{{"TraceId": "{2:032x}", "SpanId": "{2:08x}{0:08x}", "TraceState": "", "Attributes": {{}}}}]'
    store.write("otel_traces", [span(1, 0, 0), span(1, 1, 50), span(2, 0, 10), span(2, 1, 20, link), span(3, 0, 100)])
    store.write("bus_messages", [bus(5), bus(30), bus(90)])
    yield store
    store.close()


def enforce(store: Store, now_s: float, max_age_s: float = 0, max_spans: int = 0) -> dict:
    job = store.retain(int(now_s * S), max_age_s, max_spans)
    assert job.wait(30)
    return job.result


def contents(store: Store) -> tuple[dict, list, int]:
    cursor = store.reader()
    try:
        traces = dict(cursor.execute("SELECT TraceId, count(*) FROM otel_traces GROUP BY TraceId").fetchall())
        arrivals = [a for (a,) in cursor.execute("SELECT ArrivalNs FROM bus_messages ORDER BY 1").fetchall()]
        links = cursor.execute("SELECT count(*) FROM span_links").fetchone()[0]
    finally:
        cursor.close()
    return {int(k, 16): v for k, v in traces.items()}, [a // S for a in arrivals], links


def test_age_drops_traces_that_ended_before_the_cutoff_whole(store):
    deleted = enforce(store, now_s=130, max_age_s=100)  # cutoff 30 s: trace 2 ended at 21 s
    assert contents(store) == ({1: 2, 3: 1}, [30, 90], 0)
    assert deleted["otel_traces"] == 2 and deleted["bus_messages"] == 1


def test_a_trace_with_one_recent_span_is_kept_whole(store):
    enforce(store, now_s=90, max_age_s=45)  # cutoff 45 s: trace 1 started at 0 s but ended at 51 s
    assert contents(store)[0] == {1: 2, 3: 1}


def test_size_keeps_the_newest_traces_that_fit(store):
    deleted = enforce(store, now_s=0, max_spans=3)  # newest first: trace 3 (1), trace 1 (2) fit; trace 2 goes
    assert contents(store)[0] == {1: 2, 3: 1}
    assert deleted["otel_traces"] == 2


def test_the_newest_data_survives_any_limit(store):
    enforce(store, now_s=10_000, max_age_s=1, max_spans=1)
    assert contents(store) == ({3: 1}, [90], 0)


def test_no_limits_delete_nothing(store):
    assert enforce(store, now_s=10_000) == {}
    assert contents(store) == ({1: 2, 2: 2, 3: 1}, [5, 30, 90], 1)
