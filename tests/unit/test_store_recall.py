"""Answers shared between requests in one store state: the same rows while nothing was committed, fresh rows after
a commit, none kept past their time, and only for the statements named as shared."""

from __future__ import annotations

import pytest

from collectors.analyses import report
from collectors.analyses.filters import Filters
from collectors.storage import recall, stream_counts
from collectors.storage.recall import Recall, RecallingReader
from collectors.storage.schema import BUS_COLUMNS
from collectors.storage.store import Store


def _bus(sequence: int) -> tuple:
    values = {"ArrivalNs": sequence, "ArrivalSeq": sequence, "Channel": "c", "Pattern": "*", "Size": 1,
              "Valid": True, "EventId": f"e{sequence}", "Source": "/s", "Sequence": sequence, "Payload": "{}",
              "Kind": "event"}  # fmt: skip
    return tuple(values.get(column) for column in BUS_COLUMNS)


COUNTING = 3
"""Statements of the stream counts counted from the sightings: whether the kept counts are up to date, then the bus
and the consumer groups."""


@pytest.fixture(autouse=True)
def _counted_from_the_sightings(monkeypatch):
    """Every write here is recent, so the kept counts are never brought up to date and answers count the sightings
    (collectors/storage/stream_counts.py)."""
    monkeypatch.setattr(stream_counts, "QUIET_S", 3600.0)


class Counting:
    """A real store reader that counts the statements it runs."""

    def __init__(self, reader):
        self.reader = reader
        self.statements = 0

    def execute(self, query, parameters=()):
        self.statements += 1
        return self.reader.execute(query, parameters)

    def close(self):
        self.reader.close()


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _streams(store: Store, kept: Recall) -> tuple[list[dict], int]:
    reader = Counting(store.reader())
    try:
        answer = report.streams(RecallingReader(reader, kept, store.generation, report.STATEMENTS), Filters())
    finally:
        reader.close()
    return answer, reader.statements


def test_a_commit_starts_a_new_state_and_a_read_does_not(tmp_path):
    store = Store(str(tmp_path / "s.duckdb"))
    try:
        first = store.generation
        store.reader().close()
        assert store.generation == first
        store.write("bus_messages", [_bus(1)])
        assert store.generation == first + 1
    finally:
        store.close()


def test_the_stream_counts_run_once_per_state_and_again_after_a_commit(tmp_path):
    store, kept = Store(str(tmp_path / "s.duckdb")), Recall()
    try:
        store.write("bus_messages", [_bus(1), _bus(3)])
        answer, ran = _streams(store, kept)
        again, ran_again = _streams(store, kept)
        assert (again, ran, ran_again) == (answer, COUNTING, 0)
        assert [s["gaps"] for s in answer] == [[[2, 2]]]
        store.write("bus_messages", [_bus(2)])
        fresh, ran_fresh = _streams(store, kept)
        assert ([s["gaps"] for s in fresh], ran_fresh) == ([[]], COUNTING)
    finally:
        store.close()


def test_lost_gaps_follow_the_clock_while_the_rows_are_shared(tmp_path):
    store, kept = Store(str(tmp_path / "s.duckdb")), Recall()
    try:
        store.write("bus_messages", [_bus(1), _bus(3)])
        reader = RecallingReader(store.reader(), kept, store.generation, report.STATEMENTS)
        fresh = report.streams(reader, Filters(), grace_s=1e-9, now_ns=3)
        old = report.streams(reader, Filters(), grace_s=1e-9, now_ns=5)
        reader.close()
        assert [(s["lost"], s["lost_gaps"]) for s in (fresh[0], old[0])] == [(0, []), (1, [[2, 2]])]
    finally:
        store.close()


def test_rows_are_not_kept_past_their_time_nor_for_other_statements(tmp_path):
    clock = Clock()
    store, kept = Store(str(tmp_path / "s.duckdb")), Recall(clock)
    try:
        store.write("bus_messages", [_bus(1)])
        _, ran = _streams(store, kept)
        clock.now += recall.RECALL_S + 0.1
        _, ran_later = _streams(store, kept)
        assert (ran, ran_later) == (COUNTING, COUNTING)
        reader = Counting(store.reader())
        shared = RecallingReader(reader, kept, store.generation, report.STATEMENTS)
        for _ in range(2):
            assert shared.execute("SELECT count(*) FROM bus_messages").fetchall() == [(1,)]
        reader.close()
        assert reader.statements == 2
    finally:
        store.close()


def test_large_answers_are_not_kept(monkeypatch):
    monkeypatch.setattr(recall, "MAX_ROWS", 1)
    kept = Recall()
    kept.keep((0, "q", ()), [(1,), (2,)], None)
    kept.keep((0, "r", ()), [(1,)], None)
    assert (kept.get((0, "q", ())), kept.get((0, "r", ())).fetchall()) == (None, [(1,)])
