"""The stream counts the writer keeps equal the counts computed from scratch, whatever happened to the store.

Bus messages and consumer spans of a few streams on two channels arrive in random batches and orders (late
sequences, copies of an id, redeliveries, spans that take their stream facts from the tap's copy), some batches
are sent again, retention deletes old bus messages and whole traces in between, and the store is closed and
opened again: after every step the kept table (collectors/storage/stream_counts.py) must hold exactly the rows of
collectors/analyses/report.py ``STREAM_COUNTS`` run over everything stored, and the report read from it must equal
the report counted from the sightings.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.analyses import report
from collectors.analyses.filters import Filters
from collectors.ingest.otlp import SPAN_COLUMNS
from collectors.storage import retention, stream_counts
from collectors.storage.schema import BUS_COLUMNS
from collectors.storage.store import Store

MS = 1_000_000
CHANNELS = ("orders", "stock")
EVENTS = 6
OUTCOMES = (None, "processed", "failed", "retried", "duplicate_skipped")


def _event(index: int) -> dict:
    """An event's stream facts: its id, its stream (two partitions) and its sequence in it."""
    return {"id": f"e-{index}", "pk": f"p{index % 2}", "seq": index // 2 + 1}


def _span(**values) -> tuple:
    defaults = {"ParentSpanId": "", "TraceState": "", "ResourceAttributes": "{}", "ScopeName": "", "ScopeVersion": "",
                "SpanAttributes": "{}", "Duration": 2 * MS, "StatusCode": "Unset", "StatusMessage": "", "Events": "[]",
                "Links": "[]", "SpanKind": "Consumer", "MsgOperation": "process", "MsgSystem": "redis"}  # fmt: skip
    merged = {**defaults, **values}
    return tuple(merged.get(column) for column in SPAN_COLUMNS)


def _bus(**values) -> tuple:
    merged = {"Pattern": "*", "Size": 10, "Valid": True, "Payload": "{}", "Source": "/s", "Type": "t", **values}
    return tuple(merged.get(column) for column in BUS_COLUMNS)


def _tap(t: int, channel: str, event_id: str, sequence: int) -> tuple[str, tuple]:
    """A valid bus message of partition ``p``, arriving at ``t`` (its arrival number too)."""
    return "bus_messages", _bus(ArrivalNs=t, ArrivalSeq=t, Channel=channel, EventId=event_id, PartitionKey="p",
                                Sequence=sequence)  # fmt: skip


@st.composite
def sightings(draw) -> list[tuple[str, tuple]]:
    """(table, row) pairs: tap copies and deliveries of a few events, some deliveries without their stream facts."""
    rows: list[tuple[str, tuple]] = []
    for index in range(draw(st.integers(2, 10))):
        event = _event(draw(st.integers(0, EVENTS - 1)))
        channel = draw(st.sampled_from(CHANNELS))
        t = draw(st.integers(0, 8)) * MS
        if draw(st.booleans()):
            valid = draw(st.integers(0, 5)) > 0
            rows.append(("bus_messages", _bus(ArrivalNs=t, ArrivalSeq=index, Channel=channel, Valid=valid,
                                              EventId=event["id"], PartitionKey=event["pk"], Sequence=event["seq"],
                                              TraceId=f"{index + 1:032x}")))  # fmt: skip
            continue
        facts = draw(st.booleans())  # a delivery that carries its stream facts, or takes them from the tap's copy
        group = draw(st.sampled_from(("g1", "g2", None)))
        rows.append(("otel_traces", _span(
            TraceId=f"{draw(st.integers(1, 6)):032x}", SpanId=f"{index + 1:016x}", Timestamp=t,
            SpanName=f"process {channel}", ServiceName=draw(st.sampled_from(("a", "b"))), MsgDestination=channel,
            MsgMessageId=event["id"], MsgConsumerGroup=group, Outcome=draw(st.sampled_from(OUTCOMES)),
            Redelivered=draw(st.sampled_from((None, False, True))),
            StatusCode=draw(st.sampled_from(("Unset", "Error"))),
            CeSource="/s" if facts else None, PartitionKey=event["pk"] if facts else None,
            Sequence=event["seq"] if facts else None, CeType="t" if facts else None)))  # fmt: skip
    return rows


steps = st.lists(
    st.one_of(
        st.tuples(st.just("store"), st.integers(1, 3)),
        st.tuples(st.just("retry"), st.integers(0, 8)),
        st.tuples(st.just("retain"), st.integers(1, 3)),
        st.tuples(st.just("expire"), st.integers(0, 8)),
        st.tuples(st.just("restart"), st.none()),
    ),
    min_size=1,
    max_size=10,
)


class Arrivals:
    """The rows in their arrival order, handed out batch by batch; the batches sent so far, to send again."""

    def __init__(self, rows: list[tuple[str, tuple]], order: list[int]):
        self.waiting = [rows[i] for i in order]
        self.sent: list[list[tuple[str, tuple]]] = []

    def next(self, count: int) -> list[tuple[str, tuple]]:
        batch, self.waiting = self.waiting[:count], self.waiting[count:]
        if batch:
            self.sent.append(batch)
        return batch

    def again(self, index: int) -> list[tuple[str, tuple]]:
        return self.sent[index % len(self.sent)] if self.sent else []


def _send(store: Store, batch: list[tuple[str, tuple]]) -> None:
    tables: dict[str, list[tuple]] = {}
    for table, row in batch:
        tables.setdefault(table, []).append(row)
    if tables:
        assert store.submit_tables(tables).wait(30)


def _apply(store: Store, path: str, arrivals: Arrivals, step: tuple) -> Store:
    action, value = step
    if action in ("store", "retry"):
        _send(store, arrivals.next(value) if action == "store" else arrivals.again(value))
    elif action == "retain":  # keep the newest traces only
        assert store.submit_action(lambda cursor: retention.enforce(cursor, 0, 0, value)).wait(30)
    elif action == "expire":  # drop what is older than a time: bus messages and whole traces
        now_ns = value * MS + 1_000_000_000
        assert store.submit_action(lambda cursor: retention.enforce(cursor, now_ns, 1.0, 0)).wait(30)
    else:
        store.close()
        store = Store(path)
    return store


def _caught_up(store: Store) -> Store:
    """The store with its kept counts brought up to date however recently something was noted."""
    assert store.submit_action(stream_counts.catch_up).wait(30)
    return store


def _rows(store: Store, sql: str) -> list[tuple]:
    reader = store.reader()
    try:
        return sorted(reader.execute(sql).fetchall(), key=repr)
    finally:
        reader.close()


def _reports(store: Store, filters: Filters) -> tuple[list[dict], list[dict]]:
    """The report read from the kept counts, and counted from the sightings (a window from the start of time)."""
    reader = store.reader()
    try:
        counted = Filters(0, None, filters.channel, filters.group)
        return report.streams(reader, filters, now_ns=5 * MS), report.streams(reader, counted, now_ns=5 * MS)
    finally:
        reader.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=sightings(), plan=steps, data=st.data())
def test_the_kept_counts_equal_a_recomputation_after_every_step(tmp_path_factory, rows, plan, data):
    arrivals = Arrivals(rows, data.draw(st.permutations(range(len(rows)))))
    path = str(tmp_path_factory.mktemp("store") / "store.duckdb")
    store = Store(path)
    try:
        for step in [*plan, ("store", len(rows))]:  # at last whatever has not arrived yet
            store = _apply(store, path, arrivals, step)
            assert _rows(_caught_up(store), f"SELECT * FROM {report.COUNTED}") == _rows(store, report.STREAM_COUNTS)
        filters = Filters(channel=data.draw(st.sampled_from((None, *CHANNELS))),
                          group=data.draw(st.sampled_from((None, "g1", "a"))))  # fmt: skip
        kept, counted = _reports(_caught_up(store), filters)
        assert kept == counted
    finally:
        store.close()


def test_a_late_sequence_closes_the_gap_it_left(tmp_path):
    store = Store(str(tmp_path / "store.duckdb"))
    try:
        _send(store, [_tap(0, "orders", "e-1", 1), _tap(1, "orders", "e-3", 3)])
        assert [(s["gaps"], s["out_of_order"]) for s in _reports(_caught_up(store), Filters())[0]] == [([[2, 2]], 0)]
        _send(store, [_tap(2, "orders", "e-2", 2)])
        assert [(s["gaps"], s["out_of_order"]) for s in _reports(_caught_up(store), Filters())[0]] == [([], 1)]
    finally:
        store.close()


def test_only_the_noted_channels_are_counted_again(tmp_path):
    """A commit on one channel leaves the rows of the other as they were (here: rows no recomputation would give)."""
    store = Store(str(tmp_path / "store.duckdb"))
    try:
        _send(store, [_tap(n, channel, "e", 1) for n, channel in enumerate(CHANNELS)])
        cursor = _caught_up(store).cursor()
        cursor.execute(f"UPDATE {report.COUNTED} SET received = 99")
        cursor.close()
        _send(store, [_tap(9, "orders", "f", 2)])
        received = {s["channel"]: s["received"] for s in _reports(_caught_up(store), Filters())[0]}
        assert received == {"orders": 2, "stock": 99}
    finally:
        store.close()


def test_while_spans_keep_coming_answers_count_the_sightings_and_once_quiet_a_reader_catches_up(tmp_path, monkeypatch):
    store = Store(str(tmp_path / "store.duckdb"))
    try:
        _send(store, [_tap(0, "orders", "e-1", 1)])
        monkeypatch.setattr(stream_counts, "QUIET_S", 3600.0)  # a note is always recent
        _send(store, [_tap(1, "orders", "e-3", 3)])
        assert _rows(store, f"SELECT received FROM {report.COUNTED}") == []  # not counted yet: the notes stay
        assert [s["gaps"] for s in _reports(store, Filters())[0]] == [[[2, 2]]]  # counted from the sightings
        monkeypatch.setattr(stream_counts, "QUIET_S", 0.0)
        assert _rows(store, f"SELECT received FROM {report.COUNTED}") == [(2,)]  # this reader's refresh caught up
        assert [s["gaps"] for s in _reports(store, Filters())[0]] == [[[2, 2]]]
    finally:
        store.close()


def test_an_update_that_fails_midway_is_done_again_after_a_restart(tmp_path, monkeypatch):
    monkeypatch.setattr(stream_counts, "QUIET_S", 0.0)
    path = str(tmp_path / "store.duckdb")
    store = Store(path)
    message = _tap(0, "orders", "e", 1)
    try:
        statements = stream_counts._REPLACE
        monkeypatch.setattr(stream_counts, "_REPLACE", (*statements[:2], "SELECT error('the collectors stop here')"))
        _send(store, [message])
        with pytest.raises(Exception, match="the collectors stop here"):
            store.reader()
        store.close()
        monkeypatch.setattr(stream_counts, "_REPLACE", statements)
        store = Store(path)
        assert _rows(store, f"SELECT * FROM {report.COUNTED}") == _rows(store, report.STREAM_COUNTS)
        assert [s["received"] for s in _reports(store, Filters())[0]] == [1]
    finally:
        store.close()


def test_a_store_without_the_table_or_with_another_definition_gets_it_rebuilt(tmp_path):
    path = str(tmp_path / "store.duckdb")
    store = Store(path)
    _send(store, [_tap(0, "orders", "e", 1)])
    cursor = store.cursor()
    cursor.execute(f"DELETE FROM {report.COUNTED}")
    cursor.execute(f"UPDATE {stream_counts.VERSIONS} SET Digest = 'older' WHERE Name = '{report.COUNTED}'")
    cursor.close()
    store.close()
    store = Store(path)
    try:
        assert len(_rows(store, f"SELECT * FROM {report.COUNTED}")) == 1
    finally:
        store.close()
