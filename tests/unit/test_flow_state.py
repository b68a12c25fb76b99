"""The flows the writer keeps equal the flows computed from scratch, whatever happened to the store.

The same random interleavings as the pairing's (tests/unit/test_pairing_state.py: late producers, links across
traces, retried exports, retention deleting whole traces, restarts): after every step the kept tables
(collectors/storage/flows.py) must hold exactly the rows of collectors/analyses/latency.py ``FLOWS`` and
``END_TO_END`` run over every stored span.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.analyses.latency import END_TO_END, FLOW_ENDS, FLOWS, TRACE_FLOWS
from collectors.storage import pairing
from collectors.storage.store import Store
from tests.unit.test_pairing_state import MS, Arrivals, _apply, _row, _trace, spans, steps


def _rows(store: Store, sql: str) -> list[tuple]:
    reader = store.reader()
    try:
        return sorted(reader.execute(sql).fetchall(), key=repr)
    finally:
        reader.close()


def _kept_equals_scratch(store: Store) -> None:
    assert _rows(store, f"SELECT * FROM {TRACE_FLOWS}") == _rows(store, FLOWS)
    assert _rows(store, f"SELECT * FROM {FLOW_ENDS}") == _rows(store, END_TO_END)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=spans(), plan=steps, data=st.data())
def test_the_kept_flows_equal_a_recomputation_after_every_step(tmp_path_factory, rows, plan, data):
    arrivals = Arrivals(rows, data.draw(st.permutations(range(len(rows)))))
    path = str(tmp_path_factory.mktemp("store") / "store.duckdb")
    noted = pairing.MAX_PENDING
    pairing.MAX_PENDING = data.draw(st.sampled_from((1, noted)))  # every commit brings it up to date, or the reader
    store = Store(path)
    try:
        for step in plan + [("store", 1)] * len(rows):  # at last whatever has not arrived yet, one by one
            store = _apply(store, path, arrivals, step)
            _kept_equals_scratch(store)
    finally:
        store.close()
        pairing.MAX_PENDING = noted


def _linked(trace: int, span: str, to: tuple[int, str], t: int) -> tuple:
    link = [{"TraceId": _trace(to[0]), "SpanId": to[1], "TraceState": "", "Attributes": {}}]
    return _row(TraceId=_trace(trace), SpanId=span, SpanKind="Consumer", MsgOperation="process", Timestamp=t * MS,
                SpanName="process orders", MsgConsumerGroup="g", Links=json.dumps(link))  # fmt: skip


def test_a_trace_that_links_in_later_joins_the_flow_and_moves_its_end(tmp_path):
    store = Store(str(tmp_path / "store.duckdb"))
    producer = _row(TraceId=_trace(1), SpanId="p", SpanKind="Producer", MsgOperation="send", SpanName="send orders",
                    Timestamp=0)  # fmt: skip
    try:
        store.write("otel_traces", [producer, _linked(3, "c3", (1, "p"), 5)])
        assert _rows(store, f"SELECT flow, finish FROM {FLOW_ENDS}") == [(_trace(1), 5 * MS + 2 * MS)]
        store.write("otel_traces", [_linked(2, "c2", (3, "c3"), 9)])  # a third trace joins the flow
        assert _rows(store, f"SELECT trace_id, flow FROM {TRACE_FLOWS}") == [(_trace(n), _trace(1)) for n in (1, 2, 3)]
        assert _rows(store, f"SELECT flow, finish FROM {FLOW_ENDS}") == [(_trace(1), 11 * MS)]
        _kept_equals_scratch(store)
    finally:
        store.close()
