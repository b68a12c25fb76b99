"""The stream counts the writer keeps: every stream's sequence state at every vantage point, updated only for the
channels that spans and bus messages change.

Counting a stream (received, duplicates, redeliveries, out of order, gaps and when each gap's newer neighbour came)
takes window functions over every sighting at every vantage point (collectors/analyses/report.py); done for each
answer, its cost grew with the store. Here the writer keeps the counts of every stream as a table
(report.py ``COUNTED``, defined by ``STREAM_COUNTS``) and recomputes the rows of just the channels that changed, by
the same definition run over just the sightings on those channels.

A stream's counts depend only on its own sightings, and every sighting on a channel depends only on rows of that
channel: a bus message, or a delivery in the kept pairing (collectors/storage/pairing.py) whose outcome and
redelivered mark come from deliveries of the same destination, and whose missing stream facts come from the tap's
copy on the same channel. The scope is a channel rather than one stream for that last reason: which stream such a
delivery falls in can change with a bus message of its channel. So a commit notes the channels of the spans and
bus messages it stores, retention those of the rows it deletes (``PENDING``, in the same transaction: a crash loses
nothing noted), and when a reader is handed out (``Store.reader``) once nothing was noted for ``QUIET_S``, the
writer, after the pairing's upkeep, replaces the rows of the noted channels and drops the notes.

A channel's rows are counted again over all its sightings, which costs about what one answer counting them did; so
while spans keep coming they are not: the notes stay, and an answer counts the sightings itself as before
(collectors/analyses/report.py reads the table only while nothing is noted). What it reads then always equals
``STREAM_COUNTS`` run from scratch; a store opened without the table, or with one built by another definition of
it or of the pairing, gets it rebuilt. On ClickHouse the same definition would be a view.
"""

from __future__ import annotations

import hashlib
import time

import pyarrow as pa

from collectors.analyses.deliveries import PAIRING
from collectors.analyses.report import COUNTED, NOTED, STREAM_COUNTS, kept_counts
from collectors.storage import pairing
from collectors.storage.pairing import VERSIONS

PENDING = NOTED
"""The channel of every span and bus message stored or deleted since the table was last brought up to date, and when
it was noted; the table is there only while something is noted."""
QUIET_S = 1.0
"""Seconds without a new note after which a reader's refresh brings the table up to date."""
_BATCH = "_stream_batch"
_SCOPE = "_stream_scope"

_CREATE = (f"CREATE TABLE IF NOT EXISTS {VERSIONS} (Name VARCHAR PRIMARY KEY, Digest VARCHAR NOT NULL)",)
_CREATE_PENDING = f"CREATE TABLE IF NOT EXISTS {PENDING} (Channel VARCHAR PRIMARY KEY, NotedNs BIGINT NOT NULL)"
# the counts read the kept pairing; the notes' shape is part of the definition too (a rebuild drops them)
_DIGEST = hashlib.sha256((PAIRING + STREAM_COUNTS + _CREATE_PENDING).encode()).hexdigest()[:16]
_BUILT = f"SELECT Digest FROM {VERSIONS} WHERE Name = ?"
_REBUILD = (
    f"CREATE OR REPLACE TABLE {COUNTED} AS {STREAM_COUNTS}",
    f"INSERT OR REPLACE INTO {VERSIONS} VALUES ('{COUNTED}', '{_DIGEST}')",
    f"DROP TABLE IF EXISTS {PENDING}",
)
# Each note statement takes the time of noting as its first parameter.
_NOTE_BATCH = f"INSERT OR REPLACE INTO {PENDING} SELECT DISTINCT Channel, ? FROM {_BATCH} WHERE Channel IS NOT NULL"
_NOTE_TRACES = f"""
INSERT OR REPLACE INTO {PENDING} SELECT DISTINCT MsgDestination, ? FROM otel_traces
WHERE TraceId IN ({{traces}}) AND MsgDestination IS NOT NULL
"""
_NOTE_BUS = f"INSERT OR REPLACE INTO {PENDING} SELECT DISTINCT Channel, ? FROM bus_messages WHERE {{where}}"
_IS_NOTED = f"SELECT count(*) FROM information_schema.tables WHERE table_name = '{PENDING}'"
_LAST_NOTED = f"SELECT max(NotedNs) FROM {PENDING}"
_REPLACE = (
    f"CREATE OR REPLACE TEMP TABLE {_SCOPE} AS SELECT DISTINCT Channel FROM {PENDING}",
    f"DELETE FROM {COUNTED} WHERE channel IN (SELECT Channel FROM {_SCOPE})",
    f"INSERT INTO {COUNTED} {kept_counts(f'SELECT Channel FROM {_SCOPE}')}",
    f"DROP TABLE {PENDING}",
    f"DROP TABLE {_SCOPE}",
)


def ensure(cursor) -> None:
    """Build the table from every stored sighting unless it is there and was built by this definition (after
    ``pairing.ensure``: it reads the kept pairing)."""
    for statement in _CREATE:
        cursor.execute(statement)
    built = next(iter(cursor.execute(_BUILT, [COUNTED]).fetchall()), None)
    if built is None or built[0] != _DIGEST:
        rebuild(cursor)


def rebuild(cursor) -> None:
    """Compute the table from scratch (a store written before the table existed, or by other means)."""
    for statement in (*_CREATE, *_REBUILD):
        cursor.execute(statement)


def _execute_note(cursor, statement: str, parameters: list) -> None:
    cursor.execute(_CREATE_PENDING)
    cursor.execute(statement, [time.time_ns(), *parameters])


def _note(cursor, channels: pa.Array) -> None:
    cursor.register(_BATCH, pa.table({"Channel": channels}))
    try:
        _execute_note(cursor, _NOTE_BATCH, [])
    finally:
        cursor.unregister(_BATCH)


def after_spans(cursor, spans: pa.Table) -> None:
    """Note the channels of a batch of spans just stored (in the same transaction)."""
    _note(cursor, spans["MsgDestination"])


def after_bus_messages(cursor, messages: pa.Table) -> None:
    """Note the channels of a batch of bus messages just stored (in the same transaction)."""
    _note(cursor, messages["Channel"])


def touch_traces(cursor, traces: str) -> None:
    """Note the channels of the spans of the traces that ``traces`` (SQL selecting TraceId) names, before they are
    deleted."""
    _execute_note(cursor, _NOTE_TRACES.format(traces=traces), [])


def touch_bus_messages(cursor, where: str, parameters: list) -> None:
    """Note the channels of the bus messages that ``where`` (SQL over bus_messages, with ``parameters``) selects,
    before they are deleted."""
    _execute_note(cursor, _NOTE_BUS.format(where=where), parameters)


def refresh(cursor) -> None:
    """Recompute the rows of every channel noted, unless something was noted less than QUIET_S ago (on the writer,
    in a transaction, after the pairing is brought up to date)."""
    if not cursor.execute(_IS_NOTED).fetchall()[0][0]:
        return
    last = cursor.execute(_LAST_NOTED).fetchall()[0][0]
    if last is not None and time.time_ns() - last < QUIET_S * 1e9:
        return
    catch_up(cursor)


def catch_up(cursor) -> None:
    """Recompute the rows of every channel noted, however recently (on the writer, in a transaction), from the
    pairing brought up to date first."""
    pairing.refresh(cursor)
    if cursor.execute(_IS_NOTED).fetchall()[0][0]:
        for statement in _REPLACE:
            cursor.execute(statement)
