"""Every tap batch is committed or its failure is counted; a row the store cannot hold is kept as malformed,
never dropped with its neighbours. Against the real store (DuckDB in memory)."""

from __future__ import annotations

import pytest

from collectors.bus.bus_tap import tap_row
from collectors.bus.tap_writer import TapWriter, storable_malformed
from collectors.storage.store import Store


@pytest.fixture
def store():
    store = Store(":memory:")
    yield store
    store.close()


def valid(sequence: int) -> tuple:
    payload = b'{"specversion":"1.0","id":"e%d","source":"/s","type":"t","sequence":"%d"}' % (sequence, sequence)
    return tap_row(1_000 + sequence, sequence, "t.c", "*", payload)


def unholdable(sequence: int) -> tuple:
    """A row as a parser that let a lone surrogate through would make it: Arrow cannot encode it."""
    row = list(valid(sequence))
    row[7] = "\ud800"  # EventId
    return tuple(row)


def rows_stored(store: Store) -> list[tuple]:
    cursor = store.cursor()
    try:
        query = "SELECT ArrivalSeq, Kind, EventId, Error FROM bus_messages ORDER BY ArrivalSeq"
        return cursor.execute(query).fetchall()
    finally:
        cursor.close()


def test_only_the_row_the_store_refuses_is_malformed(store):
    writer = TapWriter(lambda rows: store.submit_tables({"bus_messages": rows}))
    batch = [valid(n) for n in range(1, 1001)]
    batch[500] = unholdable(501)
    writer.write(batch)
    writer.write([valid(n) for n in range(1001, 1011)])
    writer.settle(wait_all=True)
    rows = rows_stored(store)
    assert len(rows) == 1010
    assert [r for r in rows if r[1] != "event"] == [
        (
            501,
            "malformed",
            None,
            "the store cannot hold this message (UnicodeEncodeError: 'utf-8' codec can't encode character "
            "'\\ud800' in position 0: surrogates not allowed)",
        )
    ]
    assert writer.status() == {
        "recorded": 1010,
        "stored_as_malformed": 1,
        "unstored": 0,
        "pending": 0,
        "store_error": None,
    }
    assert writer.problem() is None


def test_a_row_that_cannot_be_stored_even_as_malformed_is_counted(store):
    def submit(rows):
        if any(row[2] == "t.never" for row in rows):  # a store that refuses this channel whatever it holds
            return store.submit_tables({"bus_messages": [(*row[:4], "not an integer", *row[5:]) for row in rows]})
        return store.submit_tables({"bus_messages": rows})

    writer = TapWriter(submit)
    never = list(valid(3))
    never[2] = "t.never"
    writer.write([valid(1), valid(2), tuple(never), valid(4)])
    writer.settle(wait_all=True)
    assert [r[0] for r in rows_stored(store)] == [1, 2, 4]
    status = writer.status()
    assert (status["recorded"], status["unstored"], status["stored_as_malformed"]) == (3, 1, 0)
    assert writer.problem().startswith("1 bus message(s) could not be stored (")


def test_a_batch_submitted_after_the_collectors_stopped_is_counted():
    writer = TapWriter(lambda rows: None)
    writer.write([valid(1), valid(2)])
    assert (writer.status()["unstored"], writer.status()["recorded"]) == (2, 0)


def test_the_malformed_row_keeps_arrival_channel_size_and_storable_text():
    parsed = (True, None, "\ud800", "/s", "t", None, None, 1, None, None)
    row = (5, 6, "t.\udc80", "*", 42, *parsed, "pay\udfffload", "event")
    assert storable_malformed(row, "why \ud800") == (
        5, 6, "t.?", "*", 42, False, "why ?", None, None, None, None, None, None, None, None, "pay?load", "malformed",
    )  # fmt: skip
