"""The causal flows the writer keeps: which flow each linked trace is in, and each flow's ends, updated only where
spans change them.

End-to-end latency joins traces along span links into flows (a recursive walk over every link) and takes, per
flow, the first publish and the last delivery among all its spans (collectors/analyses/latency.py ``FLOWS`` and
``END_TO_END``); done for each answer, its cost grew with the store. Here the writer keeps both as tables
(``TRACE_FLOWS``, ``FLOW_ENDS``) and, each time it brings the pairing up to date (collectors/storage/pairing.py,
which calls ``refresh`` with the traces of every span stored or deleted since, ``_touched``), recomputes them for
just the flows those spans can change, by the same definitions run over just those flows' links and spans.

A flow is a connected set of traces, so a change can only merge the flows it touches through its new links, or
split the flow of a deleted trace: the scope is the touched traces, the traces at the other end of their links,
and every trace of the flows all of these were in. That scope is closed under the links (a link within an old
flow stays within it; a new link starts in a touched trace), so the definitions over it give exactly the rows the
definitions over the whole store give for those traces and flows, and no flow outside it changes. Flows are named
by their smallest trace id, which is in the scope, so the rows to replace are those named by a trace in it. On
ClickHouse the same definitions are kept alike, or read as views where others write the spans
(collectors/storage/clickhouse/state.py).
"""

from __future__ import annotations

import hashlib

from collectors.analyses.latency import END_TO_END, FLOW_ENDS, FLOWS, TRACE_FLOWS

_DIGEST = hashlib.sha256((FLOWS + END_TO_END).encode()).hexdigest()[:16]
_TOUCHED = "_touched"
"""The temporary table of the traces (``TraceId``) stored or deleted since the last update, made by the pairing."""

_REBUILD = (
    f"CREATE OR REPLACE TABLE {TRACE_FLOWS} AS {FLOWS}",
    f"CREATE OR REPLACE TABLE {FLOW_ENDS} AS {END_TO_END}",
)
_SCOPE = (
    f"""CREATE OR REPLACE TEMP TABLE _flow_near AS
    SELECT DISTINCT TraceId FROM {_TOUCHED}
    UNION SELECT LinkedTraceId FROM span_links WHERE TraceId IN (SELECT TraceId FROM {_TOUCHED})
    UNION SELECT TraceId FROM span_links WHERE LinkedTraceId IN (SELECT TraceId FROM {_TOUCHED})
    """,
    f"""CREATE OR REPLACE TEMP TABLE _flow_scope AS
    SELECT TraceId FROM _flow_near
    UNION SELECT trace_id FROM {TRACE_FLOWS}
    WHERE flow IN (SELECT flow FROM {TRACE_FLOWS} WHERE trace_id IN (SELECT TraceId FROM _flow_near))
    """,
    """CREATE OR REPLACE TEMP TABLE _flow_links AS
    SELECT * FROM span_links WHERE TraceId IN (SELECT TraceId FROM _flow_scope)
    """,
    """CREATE OR REPLACE TEMP TABLE _flow_spans AS
    SELECT * EXCLUDE (ResourceAttributes, SpanAttributes, Events, Links, StatusMessage) FROM otel_traces
    WHERE TraceId IN (SELECT TraceId FROM _flow_scope)
    """,
)
_SCOPED_FLOWS = FLOWS.replace("span_links", "_flow_links")
_SCOPED_END_TO_END = END_TO_END.replace(FLOWS, _SCOPED_FLOWS).replace("otel_traces", "_flow_spans")
_REPLACE = (
    f"DELETE FROM {TRACE_FLOWS} WHERE trace_id IN (SELECT TraceId FROM _flow_scope)",
    f"INSERT INTO {TRACE_FLOWS} {_SCOPED_FLOWS}",
    f"DELETE FROM {FLOW_ENDS} WHERE flow IN (SELECT TraceId FROM _flow_scope)",
    f"INSERT INTO {FLOW_ENDS} {_SCOPED_END_TO_END}",
)
_TEMPORARY = ("_flow_near", "_flow_scope", "_flow_links", "_flow_spans")


def ensure(cursor, versions: str) -> None:
    """Build both tables from every stored span unless they are there and were built by these definitions
    (``versions``: the table of kept tables' definition digests)."""
    built = next(iter(cursor.execute(f"SELECT Digest FROM {versions} WHERE Name = ?", [FLOW_ENDS]).fetchall()), None)
    if built is None or built[0] != _DIGEST:
        rebuild(cursor, versions)


def rebuild(cursor, versions: str) -> None:
    """Compute both tables from scratch."""
    for statement in _REBUILD:
        cursor.execute(statement)
    cursor.execute(f"INSERT OR REPLACE INTO {versions} VALUES ('{FLOW_ENDS}', '{_DIGEST}')")


def refresh(cursor) -> None:
    """Recompute the rows of every flow that the traces in ``_touched`` can change (on the writer, in a transaction)."""
    for statement in (*_SCOPE, *_REPLACE):
        cursor.execute(statement)
    for table in _TEMPORARY:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
