"""The pairing the writer keeps: every delivery with its outcome and producer, updated only where spans change it.

Pairing a consumer span with its producer and deciding its outcome and redelivered mark takes self-joins and
window functions over every span (collectors/analyses/deliveries.py ``PAIRING``); done for each answer, its cost
grew with the store. Here the writer keeps the result as a table (collectors/analyses/observations.py ``PAIRED``)
and, in the transaction that stores a batch of spans or deletes traces, recomputes the rows of just the deliveries
that those spans can change, by the same definition run over just the spans that can matter to them. Finding
those rows reads every span once, so a commit only notes what it changed (``PENDING``, in its own transaction:
a crash loses nothing noted) and the writer recomputes the noted rows together before a reader is handed out
(``Store.reader``), or once many are noted. What a reader sees then always equals ``PAIRING`` run from scratch,
whatever the order the spans came in; a store opened without the table (or with an older definition) gets it
rebuilt.

A delivery's row depends only on the spans of its own trace (its parent, a delivery recorded twice, a message
handed back), on the spans of the same message id (the earliest producer, earlier receipts) and on the traces its
links point into (a producer, and a child that makes it the outer half of a publish recorded twice). So the rows
a changed span can change are the deliveries of its trace, of its message id, and those linking into its trace;
and to recompute them it is enough to read the traces of those deliveries and of their link targets, and the
spans of their message ids. On ClickHouse the same definition is kept alike, or read as a view where others write the
spans (collectors/storage/clickhouse/state.py).
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

from collectors.analyses import roles
from collectors.analyses.deliveries import PAIRING
from collectors.analyses.observations import PAIRED
from collectors.storage import flows

VERSIONS = "state_versions"
"""One row per kept table: its name and a digest of its definition, to tell a table built by another version."""
PENDING = "pairing_pending"
"""The trace and message id of every span stored or deleted since the table was last brought up to date."""
MAX_PENDING = 50_000
"""Noted spans past which a commit brings the table up to date itself, so that the work a read waits for stays small."""
_DIGEST = hashlib.sha256(PAIRING.encode()).hexdigest()[:16]
_BATCH = "_pairing_batch"

_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {VERSIONS} (Name VARCHAR PRIMARY KEY, Digest VARCHAR NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {PENDING} (TraceId VARCHAR NOT NULL, MsgMessageId VARCHAR)",
)
_BUILT = f"SELECT Digest FROM {VERSIONS} WHERE Name = ?"
_REBUILD = (
    f"CREATE OR REPLACE TABLE {PAIRED} AS {PAIRING}",
    f"INSERT OR REPLACE INTO {VERSIONS} VALUES ('{PAIRED}', '{_DIGEST}')",
    f"DELETE FROM {PENDING}",
)
# What changed: the trace and message id of every span stored or deleted.
_NOTE_BATCH = f"INSERT INTO {PENDING} SELECT DISTINCT TraceId, MsgMessageId FROM {_BATCH}"
_NOTE_TRACES = f"""
INSERT INTO {PENDING} SELECT DISTINCT TraceId, MsgMessageId FROM otel_traces WHERE TraceId IN ({{traces}})
"""
_NOTED = f"SELECT count(*) FROM {PENDING}"
_TOUCHED = f"CREATE OR REPLACE TEMP TABLE _touched AS SELECT DISTINCT TraceId, MsgMessageId FROM {PENDING}"
_AFFECTED = f"""
CREATE OR REPLACE TEMP TABLE _affected AS
SELECT s.TraceId, s.SpanId, s.MsgMessageId FROM otel_traces s
WHERE {roles.delivery("s")} AND (
    s.TraceId IN (SELECT TraceId FROM _touched)
    OR s.MsgMessageId IN (SELECT MsgMessageId FROM _touched)
    OR EXISTS (SELECT 1 FROM span_links l WHERE l.TraceId = s.TraceId AND l.SpanId = s.SpanId
               AND l.LinkedTraceId IN (SELECT TraceId FROM _touched)))
"""
# The spans a recomputation reads: whole traces of the affected deliveries and of their link targets, and the
# spans of their message ids (a producer of the same id, an earlier receipt; the child that makes a producer the
# outer half of a publish recorded twice carries its id too). One scan of the spans.
_SCOPE = (
    """CREATE OR REPLACE TEMP TABLE _scope_traces AS
    SELECT TraceId FROM _affected
    UNION SELECT l.LinkedTraceId FROM span_links l
        SEMI JOIN _affected a ON a.TraceId = l.TraceId AND a.SpanId = l.SpanId
    """,
    """CREATE OR REPLACE TEMP TABLE _scope_spans AS
    SELECT * EXCLUDE (ResourceAttributes, SpanAttributes, Events, Links, StatusMessage) FROM otel_traces
    WHERE TraceId IN (SELECT TraceId FROM _scope_traces) OR MsgMessageId IN (SELECT MsgMessageId FROM _affected)
    """,
    """CREATE OR REPLACE TEMP TABLE _scope_links AS
    SELECT l.* FROM span_links l SEMI JOIN _affected a ON a.TraceId = l.TraceId AND a.SpanId = l.SpanId
    """,
)
_SCOPED_PAIRING = PAIRING.replace("otel_traces", "_scope_spans").replace("span_links", "_scope_links")
_REPLACE = (
    f"""DELETE FROM {PAIRED} p WHERE p.TraceId IN (SELECT TraceId FROM _touched)
    OR EXISTS (SELECT 1 FROM _affected a WHERE a.TraceId = p.TraceId AND a.SpanId = p.SpanId)""",
    f"""INSERT INTO {PAIRED} SELECT * FROM ({_SCOPED_PAIRING}) p
    SEMI JOIN _affected a ON a.TraceId = p.TraceId AND a.SpanId = p.SpanId""",
)
_DONE = f"DELETE FROM {PENDING}"
_TEMPORARY = ("_touched", "_affected", "_scope_traces", "_scope_spans", "_scope_links")


def ensure(cursor) -> None:
    """Build the table from every stored span unless it is there and was built by this definition."""
    for statement in _CREATE:
        cursor.execute(statement)
    built = next(iter(cursor.execute(_BUILT, [PAIRED]).fetchall()), None)
    if built is None or built[0] != _DIGEST:
        rebuild(cursor)
        return
    flows.ensure(cursor, VERSIONS)  # the flows are brought up to date with the pairing (collectors/storage/flows.py)


def rebuild(cursor) -> None:
    """Compute the table from scratch (a store written before the table existed, or by other means)."""
    for statement in (*_CREATE, *_REBUILD):
        cursor.execute(statement)
    flows.rebuild(cursor, VERSIONS)


def after_spans(cursor, spans: pa.Table) -> None:
    """Note a batch of spans just stored (in the same transaction); bring the table up to date if much is noted."""
    cursor.register(_BATCH, spans.select(["TraceId", "MsgMessageId"]))
    try:
        cursor.execute(_NOTE_BATCH)
    finally:
        cursor.unregister(_BATCH)
    if cursor.execute(_NOTED).fetchall()[0][0] >= MAX_PENDING:
        refresh(cursor)


def touch_traces(cursor, traces: str) -> None:
    """Note the spans of the traces that ``traces`` (SQL selecting TraceId) names, before they are deleted."""
    cursor.execute(_NOTE_TRACES.format(traces=traces))


def refresh(cursor) -> None:
    """Recompute the rows of every delivery that the noted spans can change (on the writer, in a transaction)."""
    if not cursor.execute(_NOTED).fetchall()[0][0]:
        return
    for statement in (_TOUCHED, _AFFECTED, *_SCOPE, *_REPLACE):
        cursor.execute(statement)
    flows.refresh(cursor)
    cursor.execute(_DONE)
    for table in _TEMPORARY:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
