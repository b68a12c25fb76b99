"""Read-only queries behind the API: the report, one trace, recent and malformed bus messages.

Every query is parameterised; nothing from a request is spliced into SQL. Functions take a DuckDB
cursor and plain values and return plain data ready for JSON.
"""

from __future__ import annotations

import itertools
import json
import time

from collectors.streams import count_stream

BUS_VANTAGE = "bus"

_BUS_OBSERVATIONS = """
SELECT 'bus' AS vantage, Channel, Source, PartitionKey, EventId, Sequence
FROM bus_messages WHERE Valid
ORDER BY Channel, Source, PartitionKey NULLS FIRST, ArrivalNs, ArrivalSeq
"""

# A consumer span may omit the stream facts; the bus tap's copy of the same event supplies them.
_CONSUMER_OBSERVATIONS = """
WITH bus AS (
    SELECT Channel, EventId, any_value(Source) AS Source, any_value(PartitionKey) AS PartitionKey,
           any_value(Sequence) AS Sequence
    FROM bus_messages WHERE Valid GROUP BY Channel, EventId
)
SELECT s.MsgConsumerGroup AS vantage, s.MsgDestination AS Channel,
       COALESCE(s.CeSource, bus.Source) AS Source,
       COALESCE(s.PartitionKey, bus.PartitionKey) AS PartitionKey,
       s.MsgMessageId AS EventId,
       COALESCE(s.Sequence, bus.Sequence) AS Sequence
FROM otel_traces s
LEFT JOIN bus ON bus.Channel = s.MsgDestination AND bus.EventId = s.MsgMessageId
WHERE s.SpanKind = 'Consumer' AND s.MsgConsumerGroup IS NOT NULL AND s.MsgMessageId IS NOT NULL
  AND s.MsgDestination IS NOT NULL
ORDER BY vantage, Channel, Source NULLS FIRST, PartitionKey NULLS FIRST, s.Timestamp, s.SpanId
"""


def _streams(rows: list[tuple]) -> list[dict]:
    streams = []
    for (vantage, channel, source, partitionkey), group in itertools.groupby(rows, key=lambda r: r[:4]):
        counts = count_stream((r[4], r[5]) for r in group)
        streams.append(
            {
                "vantage": vantage,
                "channel": channel,
                "source": source,
                "partitionkey": partitionkey,
                "received": counts.received,
                "duplicates": counts.duplicates,
                "out_of_order": counts.out_of_order,
                "missing": counts.missing,
                "gaps": counts.gaps,
            }
        )
    return streams


def report(cursor) -> dict:
    """Per-stream counts at every vantage point, plus totals and the malformed count."""
    streams = _streams(cursor.execute(_BUS_OBSERVATIONS).fetchall())
    streams += _streams(cursor.execute(_CONSUMER_OBSERVATIONS).fetchall())
    (malformed,) = cursor.execute("SELECT count(*) FROM bus_messages WHERE NOT Valid").fetchone()
    (spans,) = cursor.execute("SELECT count(*) FROM otel_traces").fetchone()
    totals = {key: sum(s[key] for s in streams) for key in ("received", "duplicates", "out_of_order", "missing")}
    return {
        "generated_at_ns": time.time_ns(),
        "streams": streams,
        "malformed": malformed,
        "spans": spans,
        "totals": totals,
    }


_TRACE = """
SELECT Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
       ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage,
       Events, Links
FROM otel_traces WHERE TraceId = ? ORDER BY Timestamp, SpanId
"""
_JSON_COLUMNS = ("ResourceAttributes", "SpanAttributes", "Events", "Links")


def trace(cursor, trace_id: str) -> list[dict]:
    """All spans of one trace with attributes, events and links decoded; [] if unknown."""
    cursor.execute(_TRACE, [trace_id])
    names = [d[0] for d in cursor.description]
    spans = []
    for row in cursor.fetchall():
        span = dict(zip(names, row, strict=False))
        for column in _JSON_COLUMNS:
            span[column] = json.loads(span[column])
        spans.append(span)
    return spans


_MESSAGES = """
SELECT ArrivalNs, Channel, Pattern, Size, Valid, Error, EventId, Source, Type, Subject, EventTime,
       Sequence, PartitionKey, TraceId, Payload
FROM bus_messages WHERE (? OR NOT Valid)
ORDER BY ArrivalNs DESC, ArrivalSeq DESC LIMIT ?
"""


def messages(cursor, limit: int, malformed_only: bool = False) -> list[dict]:
    """The most recent bus messages, newest first; only malformed ones if asked."""
    cursor.execute(_MESSAGES, [not malformed_only, limit])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=False)) for row in cursor.fetchall()]


def counts(cursor) -> dict:
    """Row counts for the health endpoint."""
    (spans,) = cursor.execute("SELECT count(*) FROM otel_traces").fetchone()
    bus, malformed = cursor.execute("SELECT count(*), count(*) FILTER (WHERE NOT Valid) FROM bus_messages").fetchone()
    return {"spans": spans, "bus_messages": bus, "malformed": malformed}
