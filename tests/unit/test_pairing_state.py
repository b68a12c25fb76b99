"""The pairing the writer keeps equals the pairing computed from scratch, whatever happened to the store.

Spans of a few messages, traces, groups and brokers arrive in random batches and orders (late producers, an
earlier copy of an id after a later one, a delivery recorded twice, a publish recorded twice, SQS receipts,
RabbitMQ messages handed back), some batches are exported again, retention deletes whole traces in between, and
the store is closed and opened again: after every step the kept table (collectors/storage/pairing.py) must hold
exactly the rows of collectors/analyses/deliveries.py ``PAIRING`` run over every stored span.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.analyses.deliveries import PAIRING
from collectors.analyses.observations import PAIRED
from collectors.ingest.otlp import SPAN_COLUMNS
from collectors.storage import pairing, retention, schema
from collectors.storage.store import Store

MS = 1_000_000
TRACES = 12
IDS = ("m-1", "m-1", "m-2", None)  # mostly one message, so that its spans meet
KINDS = ("producer", "nested_producer", "consumer", "consumer_twice", "receipt")
SYSTEMS = ("redis", "rabbitmq")
OUTCOMES = (None, "processed", "failed", "retried", "duplicate_skipped", "dead_lettered")


def _row(**values) -> tuple:
    defaults = {"ParentSpanId": "", "TraceState": "", "ResourceAttributes": "{}", "ScopeName": "", "ScopeVersion": "",
                "SpanAttributes": "{}", "Duration": 2 * MS, "StatusCode": "Unset", "StatusMessage": "", "Events": "[]",
                "Links": "[]", "MsgDestination": "orders", "ServiceName": "a"}  # fmt: skip
    merged = {**defaults, **values}
    return tuple(merged.get(column) for column in SPAN_COLUMNS)


def _trace(n: int) -> str:
    return f"{n:032x}"


@st.composite
def spans(draw) -> list[tuple]:
    """Spans of a few messages: every kind of publish and delivery the pairing reads, tied in time now and then."""
    rows: list[tuple] = []
    producers: list[tuple[str, str]] = []
    for index in range(draw(st.integers(2, 9))):
        kind = draw(st.sampled_from(KINDS))
        # a trace of its own, or one an earlier publish is in (where it can be that publish's child)
        known = sorted({trace for trace, _ in producers})
        trace = draw(
            st.sampled_from(known) if known and draw(st.booleans()) else st.builds(_trace, st.integers(1, TRACES))
        )
        span_id = f"{index + 1:016x}"
        fields = {"TraceId": trace, "SpanId": span_id, "Timestamp": draw(st.integers(0, 6)) * MS,
                  "MsgMessageId": draw(st.sampled_from(IDS)), "MsgSystem": draw(st.sampled_from(SYSTEMS)),
                  "ServiceName": draw(st.sampled_from(("a", "b")))}  # fmt: skip
        parent = draw(st.sampled_from([("", "")] + producers))
        if parent[0] == trace:
            fields["ParentSpanId"] = parent[1]
        if kind in ("producer", "nested_producer"):
            rows.append(_row(SpanKind="Producer", SpanName="send orders", MsgOperation="send", **fields))
            producers.append((trace, span_id))
            if kind == "nested_producer":  # the inner half of a publish recorded twice
                inner = {**fields, "SpanId": f"{index + 1:08x}{1:08x}", "ParentSpanId": span_id}
                rows.append(_row(SpanKind="Producer", SpanName="send orders", MsgOperation="send", **inner))
            continue
        if producers and draw(st.integers(0, 2)) == 0:
            linked_trace, linked_span = draw(st.sampled_from(producers))
            link = {"TraceId": linked_trace, "SpanId": linked_span, "TraceState": "", "Attributes": {}}
            fields["Links"] = json.dumps([link])
        fields.update(Outcome=draw(st.sampled_from(OUTCOMES)), StatusCode=draw(st.sampled_from(("Unset", "Error"))))
        fields["MsgConsumerGroup"] = draw(st.sampled_from(("g1", "g2", None)))
        if kind == "receipt":
            fields.update(MsgSystem="aws_sqs", Outcome=None)
            rows.append(_row(SpanKind="Client", SpanName="orders receive", MsgOperation="receive", **fields))
            continue
        rows.append(_row(SpanKind="Consumer", SpanName="process orders", MsgOperation="process", **fields))
        if kind == "consumer_twice":  # pika 0.44: a sibling of the same delivery, within it
            inner = {**fields, "SpanId": f"{index + 1:08x}{2:08x}", "Timestamp": fields["Timestamp"] + 1,
                     "Duration": MS}  # fmt: skip
            rows.append(_row(SpanKind="Consumer", SpanName="process orders", MsgOperation="process", **inner))
    return rows


# One step: store the next few spans of the arrival order, export an earlier batch again, keep only the newest
# traces, or restart.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("store"), st.integers(1, 3)),
        st.tuples(st.just("retry"), st.integers(0, 8)),
        st.tuples(st.just("retain"), st.integers(1, 6)),
        st.tuples(st.just("restart"), st.none()),
    ),
    min_size=1,
    max_size=10,
)


def _kept(store: Store) -> list[tuple]:
    reader = store.reader()
    try:
        return sorted(reader.execute(f"SELECT * FROM {PAIRED}").fetchall(), key=repr)
    finally:
        reader.close()


def _from_scratch(store: Store) -> list[tuple]:
    reader = store.reader()
    try:
        return sorted(reader.execute(PAIRING).fetchall(), key=repr)
    finally:
        reader.close()


class Arrivals:
    """The spans in their arrival order, handed out batch by batch; the batches sent so far, to send again."""

    def __init__(self, rows: list[tuple], order: list[int]):
        self.waiting = [rows[i] for i in order]
        self.sent: list[list[tuple]] = []

    def next(self, count: int) -> list[tuple]:
        batch, self.waiting = self.waiting[:count], self.waiting[count:]
        if batch:
            self.sent.append(batch)
        return batch

    def again(self, index: int) -> list[tuple]:
        return self.sent[index % len(self.sent)] if self.sent else []


def _apply(store: Store, path: str, arrivals: Arrivals, step: tuple) -> Store:
    action, value = step
    if action in ("store", "retry"):
        batch = arrivals.next(value) if action == "store" else arrivals.again(value)
        if batch:
            store.write("otel_traces", batch)
    elif action == "retain":
        job = store.submit_action(lambda cursor: retention.enforce(cursor, 0, 0, value))
        assert job.wait(30)
    else:
        store.close()
        store = Store(path)
    return store


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=spans(), plan=steps, data=st.data())
def test_the_kept_pairing_equals_a_recomputation_after_every_step(tmp_path_factory, rows, plan, data):
    arrivals = Arrivals(rows, data.draw(st.permutations(range(len(rows)))))
    path = str(tmp_path_factory.mktemp("store") / "store.duckdb")
    noted = pairing.MAX_PENDING
    pairing.MAX_PENDING = data.draw(st.sampled_from((1, noted)))  # every commit brings it up to date, or the reader
    store = Store(path)
    try:
        for step in plan + [("store", 1)] * len(rows):  # at last whatever has not arrived yet, one by one
            store = _apply(store, path, arrivals, step)
            assert _kept(store) == _from_scratch(store)
    finally:
        store.close()
        pairing.MAX_PENDING = noted


def test_a_late_producer_pairs_the_delivery_that_came_before_it(tmp_path):
    store = Store(str(tmp_path / "store.duckdb"))
    try:
        common = {"MsgMessageId": "m-1", "MsgSystem": "redis"}
        store.write("otel_traces", [_row(TraceId=_trace(2), SpanId="c", SpanKind="Consumer", MsgOperation="process",
                                         SpanName="process orders", Timestamp=5 * MS, **common)])  # fmt: skip
        assert [r[19:22] for r in _kept(store)] == [(None, None, None)]
        store.write("otel_traces", [_row(TraceId=_trace(1), SpanId="p", SpanKind="Producer", MsgOperation="send",
                                         SpanName="send orders", Timestamp=1 * MS, **common)])  # fmt: skip
        assert [r[19:22] for r in _kept(store)] == [("message_id", _trace(1), "p")]
    finally:
        store.close()


def test_an_update_that_fails_midway_leaves_the_kept_pairing_as_it_was(tmp_path, monkeypatch):
    """The upkeep runs in a transaction: a failure after its first statement rolls it back, and no reader is handed
    out until it has succeeded; what was noted stays noted, through a restart too."""
    path = str(tmp_path / "store.duckdb")
    store = Store(path)
    common = {"MsgMessageId": "m-1", "MsgSystem": "redis", "TraceId": _trace(1)}
    producer = _row(SpanId="p", SpanKind="Producer", MsgOperation="send", SpanName="send orders", Timestamp=0, **common)
    consumer = _row(SpanId="c", ParentSpanId="p", SpanKind="Consumer", MsgOperation="process",
                    SpanName="process orders", Timestamp=MS, **common)  # fmt: skip
    try:
        store.write("otel_traces", [consumer])
        before = _kept(store)
        statements = pairing._REPLACE
        monkeypatch.setattr(pairing, "_REPLACE", (statements[0], "SELECT error('the collectors stop here')"))
        store.write("otel_traces", [producer])
        with pytest.raises(Exception, match="the collectors stop here"):
            store.reader()
        unchecked = store.cursor()  # a cursor that waits for nothing: the table as it is
        assert sorted(unchecked.execute(f"SELECT * FROM {PAIRED}").fetchall(), key=repr) == before
        unchecked.close()
        store.close()
        monkeypatch.setattr(pairing, "_REPLACE", statements)
        store = Store(path)
        store.write("otel_traces", [producer])  # the sender retries its export
        assert _kept(store) == _from_scratch(store)
        assert [r[19] for r in _kept(store)] == ["parent"]
    finally:
        store.close()


def test_a_store_without_the_table_or_with_another_definition_gets_it_rebuilt(tmp_path):
    path = str(tmp_path / "store.duckdb")
    store = Store(path)
    store.write("otel_traces", [_row(TraceId=_trace(1), SpanId="c", SpanKind="Consumer", MsgOperation="process",
                                     SpanName="process orders", Timestamp=0, MsgMessageId="m-1")])  # fmt: skip
    reader = store.reader()
    reader.execute(f"DELETE FROM {PAIRED}")
    reader.execute(f"UPDATE {pairing.VERSIONS} SET Digest = 'older'")
    reader.close()
    store.close()
    store = Store(path)
    try:
        assert len(_kept(store)) == 1 and _kept(store) == _from_scratch(store)
    finally:
        store.close()


def test_spans_committed_with_rows_of_other_tables_are_all_stored(tmp_path):
    """The upkeep leaves the writer's cursor ready for the rest of the commit (here: bus messages)."""
    store = Store(str(tmp_path / "store.duckdb"))
    bus = dict.fromkeys(schema.BUS_COLUMNS)
    bus.update(ArrivalNs=0, ArrivalSeq=0, Channel="orders", Pattern="*", Size=1, Valid=False, Error="x", Payload="x")
    consumer = _row(TraceId=_trace(1), SpanId="c", SpanKind="Consumer", MsgOperation="process",
                    SpanName="process orders", Timestamp=0, MsgMessageId="m-1")  # fmt: skip
    try:
        job = store.submit_tables(
            {"otel_traces": [consumer], "bus_messages": [tuple(bus[c] for c in schema.BUS_COLUMNS)]}
        )
        assert job.wait(30)
        reader = store.reader()
        assert reader.execute("SELECT count(*) FROM bus_messages").fetchall() == [(1,)]
        reader.close()
        assert len(_kept(store)) == 1 and _kept(store) == _from_scratch(store)
    finally:
        store.close()
