"""Retention: drop old data by age and by span count, whole traces at a time, never the newest.

A trace is as old as its latest span end. Age retention drops traces that ended before the cutoff,
and bus messages, log records, metric points and broker samples older than it; size retention keeps
the newest traces whose spans fit in ``max_spans`` and drops the rest. The newest trace, and the
newest row of every other table, always survive, so a collectors process restarted after a long
pause still shows the last thing it saw. Runs on the store's writer thread (Store.submit_action).
"""

from __future__ import annotations

import duckdb

from collectors.storage import pairing, stream_counts

NS_PER_S = 1_000_000_000

_TRACE_AGES = """
CREATE OR REPLACE TEMP TABLE _trace_age AS
SELECT TraceId, max(Timestamp + Duration) AS EndNs, count(*) AS Spans FROM otel_traces GROUP BY TraceId
"""
_NEWEST_FIRST = "ORDER BY EndNs DESC, TraceId DESC"
_EXPIRED_BY_AGE = f"""
CREATE OR REPLACE TEMP TABLE _expired AS
SELECT TraceId FROM (SELECT TraceId, EndNs, row_number() OVER ({_NEWEST_FIRST}) AS rank FROM _trace_age)
WHERE rank > 1 AND EndNs < ?
"""
_EXPIRED_BY_SIZE = f"""
CREATE OR REPLACE TEMP TABLE _expired AS
SELECT TraceId FROM (
    SELECT TraceId, row_number() OVER ({_NEWEST_FIRST}) AS rank,
           sum(Spans) OVER ({_NEWEST_FIRST} ROWS UNBOUNDED PRECEDING) AS kept_through
    FROM _trace_age)
WHERE rank > 1 AND kept_through > ?
"""
_DELETE_TRACES = (
    "DELETE FROM span_links WHERE TraceId IN (SELECT TraceId FROM _expired)",
    "DELETE FROM otel_traces WHERE TraceId IN (SELECT TraceId FROM _expired)",
)
# (table, time column): rows older than the cutoff go, but never a table's newest row.
TIMED_TABLES = (
    ("bus_messages", "ArrivalNs"),
    ("otel_logs", "Timestamp"),
    ("otel_metrics", "TimeUnix"),
    ("broker_samples", "TimeNs"),
    ("broker_channels", "TimeNs"),
    ("broker_clients", "TimeNs"),
)
# Built from the constants above only; the cutoff is a bound parameter.
_OLD = {table: f"{column} < LEAST(?, (SELECT max({column}) FROM {table}))" for table, column in TIMED_TABLES}
_DELETE_OLD = {table: f"DELETE FROM {table} WHERE {old}" for table, old in _OLD.items()}


def _drop_expired(cursor: duckdb.DuckDBPyConnection) -> int:
    count = cursor.execute("SELECT count(*) FROM otel_traces WHERE TraceId IN (SELECT TraceId FROM _expired)")
    spans = count.fetchone()[0]
    if spans:
        pairing.touch_traces(cursor, "SELECT TraceId FROM _expired")
        stream_counts.touch_traces(cursor, "SELECT TraceId FROM _expired")
        for statement in _DELETE_TRACES:
            cursor.execute(statement)
        pairing.refresh(cursor)
    cursor.execute("DROP TABLE _expired")
    return spans


def enforce(cursor: duckdb.DuckDBPyConnection, now_ns: int, max_age_s: float, max_spans: int) -> dict[str, int]:
    """Delete what the limits say must go (0 = no limit); returns rows deleted per table."""
    deleted: dict[str, int] = {}
    if not max_age_s and not max_spans:
        return deleted
    cursor.execute(_TRACE_AGES)
    spans = 0
    if max_age_s:
        cutoff = now_ns - int(max_age_s * NS_PER_S)
        cursor.execute(_EXPIRED_BY_AGE, [cutoff])
        spans += _drop_expired(cursor)
        cursor.execute("DELETE FROM _trace_age WHERE TraceId NOT IN (SELECT TraceId FROM otel_traces)")
        stream_counts.touch_bus_messages(cursor, _OLD["bus_messages"], [cutoff])
        for table, statement in _DELETE_OLD.items():
            deleted[table] = cursor.execute(statement, [cutoff]).fetchone()[0]
    if max_spans:
        cursor.execute(_EXPIRED_BY_SIZE, [max_spans])
        spans += _drop_expired(cursor)
    cursor.execute("DROP TABLE _trace_age")
    deleted["otel_traces"] = spans
    return deleted
