"""Read-only queries behind the API: one trace, recent and malformed bus messages, row counts.

Every query is parameterised; nothing from a request is spliced into SQL. Functions take a store
reader (collectors/storage/reader.py) and plain values and return plain data ready for JSON.
"""

from __future__ import annotations

import json

from collectors.storage.reader import Reader

# Answers speak the API's one vocabulary (snake_case); the store's column names stay in the store.
_TRACE = """
SELECT Timestamp AS start_ns, TraceId AS trace_id, SpanId AS span_id, ParentSpanId AS parent_span_id,
       TraceState AS trace_state, SpanName AS name, SpanKind AS kind, ServiceName AS service,
       ResourceAttributes AS resource_attributes, ScopeName AS scope_name, ScopeVersion AS scope_version,
       SpanAttributes AS attributes, Duration AS duration_ns, StatusCode AS status, StatusMessage AS status_message,
       Events AS events, Links AS links
FROM otel_traces WHERE TraceId = ? ORDER BY Timestamp, SpanId
"""
_JSON_COLUMNS = ("resource_attributes", "attributes")


def _span_event(event: dict) -> dict:
    return {"t_ns": event.get("Timestamp"), "name": event.get("Name"), "attributes": event.get("Attributes", {})}


def _span_link(link: dict) -> dict:
    return {
        "trace_id": link.get("TraceId"),
        "span_id": link.get("SpanId"),
        "trace_state": link.get("TraceState"),
        "attributes": link.get("Attributes", {}),
    }


def trace(cursor: Reader, trace_id: str) -> list[dict]:
    """All spans of one trace with attributes, events and links decoded; [] if unknown."""
    result = cursor.execute(_TRACE, [trace_id])
    names = [d[0] for d in result.description]
    spans = []
    for row in result.fetchall():
        span = dict(zip(names, row, strict=False))
        for column in _JSON_COLUMNS:
            span[column] = json.loads(span[column])
        span["events"] = [_span_event(e) for e in json.loads(span["events"])]
        span["links"] = [_span_link(link) for link in json.loads(span["links"])]
        spans.append(span)
    return spans


_MESSAGES = """
SELECT ArrivalNs AS arrival_ns, Channel AS channel, Pattern AS pattern, Size AS size, Valid AS valid, Kind AS kind,
       Error AS error, EventId AS event_id, Source AS source, Type AS type, Subject AS subject,
       EventTime AS event_time, Sequence AS sequence, PartitionKey AS partitionkey, TraceId AS trace_id,
       Payload AS payload
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
