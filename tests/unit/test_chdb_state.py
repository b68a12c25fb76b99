"""On chdb, the tables the store's only writer keeps equal their definitions run from scratch, whatever happened.

The pairing's random interleavings (tests/unit/test_pairing_state.py: late producers, an earlier copy of an id
after a later one, links across traces, publishes and deliveries recorded twice, retried exports, retention
deleting whole traces, restarts) applied to a chdb store: after every step each kept table
(collectors/storage/clickhouse/state.py ``KEPT``) must hold exactly the rows of its definition, translated and run
over every stored span (what a store that others write answers through a view). chdb is slow to ask, so there are
few examples, and the spans that never arrived during the plan arrive at the end in one batch.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.storage import pairing, spec
from collectors.storage.clickhouse import state
from collectors.storage.store import Store
from tests.unit.test_pairing_state import MS, Arrivals, _row, _trace, spans, steps

pytest.importorskip("chdb")


def _open(path: str) -> Store:
    return spec.open_store(spec.parse(f"chdb:{path}"), 256)


def _rows(store: Store, sql: str) -> list[tuple]:
    reader = store.reader()
    try:
        return sorted(reader.execute(sql).fetchall(), key=repr)
    finally:
        reader.close()


def _kept_equals_scratch(store: Store) -> None:
    for name, definition in state.VIEWS.items():
        assert _rows(store, f"SELECT * FROM {name}") == _rows(store, definition), name


def _apply(store: Store, path: str, arrivals: Arrivals, step: tuple) -> Store:
    action, value = step
    if action in ("store", "retry"):
        batch = arrivals.next(value) if action == "store" else arrivals.again(value)
        if batch:
            store.write("otel_traces", batch)
    elif action == "retain":
        assert store.retain(0, 0, value).wait(30)
    else:
        store.close()
        store = _open(path)
    return store


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=spans(), plan=steps, data=st.data())
def test_the_kept_tables_equal_a_recomputation_after_every_step(tmp_path_factory, rows, plan, data):
    arrivals = Arrivals(rows, data.draw(st.permutations(range(len(rows)))))
    path = str(tmp_path_factory.mktemp("store") / "store.chdb")
    noted = pairing.MAX_PENDING
    pairing.MAX_PENDING = data.draw(st.sampled_from((1, noted)))  # every commit brings them up to date, or the reader
    store = _open(path)
    try:
        for step in [*plan, ("store", len(rows))]:  # at last whatever has not arrived yet
            store = _apply(store, path, arrivals, step)
            _kept_equals_scratch(store)
    finally:
        store.close()
        pairing.MAX_PENDING = noted


def test_a_late_producer_pairs_the_delivery_that_came_before_it(tmp_path):
    store = _open(str(tmp_path / "store.chdb"))
    try:
        common = {"MsgMessageId": "m-1", "MsgSystem": "redis"}
        store.write("otel_traces", [_row(TraceId=_trace(2), SpanId="c", SpanKind="Consumer", MsgOperation="process",
                                         SpanName="process orders", Timestamp=5 * MS, **common)])  # fmt: skip
        paired = f"SELECT paired_by, producer_trace, producer_span FROM {state.PAIRED}"
        assert _rows(store, paired) == [(None, None, None)]
        store.write("otel_traces", [_row(TraceId=_trace(1), SpanId="p", SpanKind="Producer", MsgOperation="send",
                                         SpanName="send orders", Timestamp=1 * MS, **common)])  # fmt: skip
        assert _rows(store, paired) == [("message_id", _trace(1), "p")]
    finally:
        store.close()


def test_kept_tables_built_by_another_definition_are_rebuilt_when_the_store_opens(tmp_path):
    path = str(tmp_path / "store.chdb")
    store = _open(path)
    store.write("otel_traces", [_row(TraceId=_trace(1), SpanId="c", SpanKind="Consumer", MsgOperation="process",
                                     SpanName="process orders", Timestamp=0, MsgMessageId="m-1")])  # fmt: skip
    kept = state.KEPT[0]
    assert len(_rows(store, f"SELECT * FROM {kept.name}")) == 1  # the noted span is in the kept table now
    job = store.submit_action(lambda client: (client.command(f"TRUNCATE TABLE {kept.rows}"),
                                              client.command(f"INSERT INTO {state.VERSIONS} VALUES "
                                                             "('clickhouse', 'older', 1000000)")))  # fmt: skip
    assert job.wait(30)
    assert _rows(store, f"SELECT * FROM {kept.name}") == []
    store.close()
    store = _open(path)
    try:
        assert len(_rows(store, f"SELECT * FROM {kept.name}")) == 1
        _kept_equals_scratch(store)
    finally:
        store.close()


def test_an_update_that_fails_midway_is_done_again_after_a_restart(tmp_path, monkeypatch):
    """ClickHouse has no transaction over the kept tables: an update that stops after marking rows stale leaves the
    notes in place, no reader is handed out until an update has succeeded, and the next one (after a restart too)
    makes the tables whole again."""
    path = str(tmp_path / "store.chdb")
    store = _open(path)
    common = {"MsgMessageId": "m-1", "MsgSystem": "redis", "TraceId": _trace(1)}
    producer = _row(SpanId="p", SpanKind="Producer", MsgOperation="send", SpanName="send orders", Timestamp=0, **common)
    consumer = _row(SpanId="c", ParentSpanId="p", SpanKind="Consumer", MsgOperation="process",
                    SpanName="process orders", Timestamp=MS, **common)  # fmt: skip
    try:
        store.write("otel_traces", [consumer])
        _kept_equals_scratch(store)
        fresh = state._insert_fresh
        monkeypatch.setattr(state, "_insert_fresh", lambda kept, version: "SELECT throwIf(1, 'the collectors stop')")
        store.write("otel_traces", [producer])
        with pytest.raises(Exception, match="the collectors stop"):
            store.reader()
        store.close()
        monkeypatch.setattr(state, "_insert_fresh", fresh)
        store = _open(path)
        _kept_equals_scratch(store)
        assert _rows(store, f"SELECT paired_by FROM {state.PAIRED}") == [("parent",)]
    finally:
        store.close()


def _linked(trace: int, span: str, to: tuple[int, str], t: int) -> tuple:
    link = [{"TraceId": _trace(to[0]), "SpanId": to[1], "TraceState": "", "Attributes": {}}]
    return _row(TraceId=_trace(trace), SpanId=span, SpanKind="Consumer", MsgOperation="process", Timestamp=t * MS,
                SpanName="process orders", MsgConsumerGroup="g", Links=json.dumps(link))  # fmt: skip


def test_flows_merge_as_traces_link_in_and_are_named_anew_when_retention_deletes_their_first_trace(tmp_path):
    store = _open(str(tmp_path / "store.chdb"))
    producer = _row(TraceId=_trace(1), SpanId="p", SpanKind="Producer", MsgOperation="send", SpanName="send orders",
                    Timestamp=0)  # fmt: skip
    flows = f"SELECT trace_id, flow FROM {state.TRACE_FLOWS}"
    try:
        store.write("otel_traces", [producer, _linked(3, "c3", (1, "p"), 5)])
        store.write("otel_traces", [_linked(2, "c2", (3, "c3"), 9)])  # a third trace joins the flow
        assert _rows(store, flows) == [(_trace(n), _trace(1)) for n in (1, 2, 3)]
        assert _rows(store, f"SELECT flow, finish FROM {state.FLOW_ENDS}") == [(_trace(1), 11 * MS)]
        assert store.retain(0, 0, 1).wait(30)  # only the newest trace (2) stays, its link to the deleted 3 with it
        assert _rows(store, flows) == [(_trace(2), _trace(2)), (_trace(3), _trace(2))]  # the flow is named anew
        assert _rows(store, f"SELECT flow, start, finish FROM {state.FLOW_ENDS}") == [(_trace(2), None, 11 * MS)]
        _kept_equals_scratch(store)
    finally:
        store.close()


def test_retention_leaves_no_marks_of_deleted_rows_once_they_outnumber_the_live_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(state, "TIDY_SLACK", 0)
    store = _open(str(tmp_path / "store.chdb"))
    consumer = {"SpanId": "c", "SpanKind": "Consumer", "MsgOperation": "process", "SpanName": "process orders"}
    consumers = [_row(TraceId=_trace(n), Timestamp=n * MS, MsgMessageId=f"m-{n}", **consumer) for n in range(1, 6)]
    stored = f"SELECT count() FROM {state.KEPT[0].rows}"
    try:
        for consumer in consumers:
            store.write("otel_traces", [consumer])
            _rows(store, stored)  # a reader after each commit: one version of each row after another
        assert _rows(store, stored) == [(5,)]
        assert store.retain(0, 0, 1).wait(30)  # four traces go
        assert _rows(store, stored) == [(1,)]
        _kept_equals_scratch(store)
    finally:
        store.close()
