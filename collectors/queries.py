"""Read-only queries behind the API: one trace, recent and malformed bus messages, row counts.

Every query is parameterised; nothing from a request is spliced into SQL. Functions take a store
reader (collectors/reader.py) and plain values and return plain data ready for JSON.
"""

from __future__ import annotations

import json

from collectors.reader import Reader

_TRACE = """
SELECT Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
       ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage,
       Events, Links
FROM otel_traces WHERE TraceId = ? ORDER BY Timestamp, SpanId
"""
_JSON_COLUMNS = ("ResourceAttributes", "SpanAttributes", "Events", "Links")


def trace(cursor: Reader, trace_id: str) -> list[dict]:
    """All spans of one trace with attributes, events and links decoded; [] if unknown."""
    result = cursor.execute(_TRACE, [trace_id])
    names = [d[0] for d in result.description]
    spans = []
    for row in result.fetchall():
        span = dict(zip(names, row, strict=False))
        for column in _JSON_COLUMNS:
            span[column] = json.loads(span[column])
        spans.append(span)
    return spans


_MESSAGES = """
SELECT ArrivalNs, Channel, Pattern, Size, Valid, Kind, Error, EventId, Source, Type, Subject, EventTime,
       Sequence, PartitionKey, TraceId, Payload
FROM bus_messages WHERE (? OR Kind = 'malformed')
ORDER BY ArrivalNs DESC, ArrivalSeq DESC LIMIT ?
"""


def messages(cursor: Reader, limit: int, malformed_only: bool = False) -> list[dict]:
    """The most recent bus messages, newest first; only malformed ones if asked."""
    result = cursor.execute(_MESSAGES, [not malformed_only, limit])
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=False)) for row in result.fetchall()]


def counts(cursor: Reader) -> dict:
    """Row counts for the health endpoint."""
    (spans,) = cursor.execute("SELECT count(*) FROM otel_traces").fetchone()
    bus, malformed = cursor.execute(
        "SELECT count(*), count(*) FILTER (WHERE Kind = 'malformed') FROM bus_messages"
    ).fetchone()
    return {"spans": spans, "bus_messages": bus, "malformed": malformed}
