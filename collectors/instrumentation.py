"""Instrumentation health: what in the incoming telemetry keeps the analyses from being exact.

- missing_attributes: PRODUCER and CONSUMER spans without a messaging attribute the analyses key
  on (messaging.system, messaging.destination.name, messaging.message.id, and for consumers
  messaging.consumer.group.name);
- unlinked_consumers: CONSUMER spans with no span link at all and no parent that is a PRODUCER
  span, so no delivery latency or causal flow can be followed from them;
- bus_without_producer: events seen on the bus for which no producer span arrived, among those that
  arrived at least ``settle_s`` seconds ago: SDKs export in batches (every 5 s by default), so the
  newest events' producer spans are usually still on their way.
"""

from __future__ import annotations

import time

from collectors import conventions as cv
from collectors.filters import Filters, bind

EXAMPLES = 10
"""Example event ids returned for events on the bus without a producer span."""
DEFAULT_SETTLE_S = 15.0
"""Events younger than this are not yet held against their producer (batch export delay)."""

_SPAN_FILTERS = """
  AND ($since_ns IS NULL OR s.Timestamp >= $since_ns) AND ($until_ns IS NULL OR s.Timestamp < $until_ns)
  AND ($channel IS NULL OR s.MsgDestination = $channel) AND ($type IS NULL OR s.CeType = $type)
  AND ($group IS NULL OR s.MsgConsumerGroup = $group) AND ($service IS NULL OR s.ServiceName = $service)
"""
_MISSING = f"""
SELECT ServiceName, SpanName, SpanKind, missing, count(*) FROM (
    SELECT s.ServiceName, s.SpanName, s.SpanKind, list_filter([
        CASE WHEN s.MsgSystem IS NULL THEN '{cv.MESSAGING_SYSTEM}' END,
        CASE WHEN s.MsgDestination IS NULL THEN '{cv.MESSAGING_DESTINATION}' END,
        CASE WHEN s.MsgMessageId IS NULL THEN '{cv.MESSAGING_MESSAGE_ID}' END,
        CASE WHEN s.SpanKind = 'Consumer' AND s.MsgConsumerGroup IS NULL THEN '{cv.MESSAGING_CONSUMER_GROUP}' END
    ], lambda a: a IS NOT NULL) AS missing
    FROM otel_traces s WHERE s.SpanKind IN ('Producer', 'Consumer') {_SPAN_FILTERS}
) WHERE len(missing) > 0 GROUP BY ALL ORDER BY count(*) DESC, 1, 2, 3
"""
_UNLINKED = f"""
SELECT s.ServiceName, s.SpanName, count(*) FROM otel_traces s
WHERE s.SpanKind = 'Consumer'
  AND NOT EXISTS (SELECT 1 FROM span_links l WHERE l.TraceId = s.TraceId AND l.SpanId = s.SpanId)
  AND NOT EXISTS (SELECT 1 FROM otel_traces p WHERE p.TraceId = s.TraceId AND p.SpanId = s.ParentSpanId
                  AND p.SpanKind = 'Producer')
  {_SPAN_FILTERS}
GROUP BY ALL ORDER BY count(*) DESC, 1, 2, 3
"""
_BUS_WITHOUT_PRODUCER = """
SELECT DISTINCT b.EventId, b.ArrivalNs FROM bus_messages b
WHERE b.Valid AND NOT EXISTS (SELECT 1 FROM otel_traces p WHERE p.SpanKind = 'Producer' AND p.MsgMessageId = b.EventId)
  AND ($since_ns IS NULL OR b.ArrivalNs >= $since_ns) AND ($until_ns IS NULL OR b.ArrivalNs < $until_ns)
  AND ($channel IS NULL OR b.Channel = $channel) AND ($type IS NULL OR b.Type = $type)
  AND b.ArrivalNs <= $settled_ns
"""
# The count and the newest examples in one statement, so the events are looked for once.
_BUS_WITHOUT_PRODUCER_FIGURES = f"""
WITH e AS MATERIALIZED (SELECT EventId, min(ArrivalNs) AS t FROM ({_BUS_WITHOUT_PRODUCER}) GROUP BY EventId)
SELECT 0 AS part, count(EventId) AS n, NULL AS EventId, NULL AS t FROM e
UNION ALL
SELECT 1, NULL, EventId, t FROM (SELECT EventId, t FROM e ORDER BY t DESC LIMIT {EXAMPLES})
ORDER BY part, t DESC
"""


def instrumentation(cursor, filters: Filters, settle_s: float = DEFAULT_SETTLE_S, now_ns: int | None = None) -> dict:
    """The three health findings within the filters."""
    values = filters.values()
    values["settled_ns"] = (time.time_ns() if now_ns is None else now_ns) - int(settle_s * 1e9)
    missing = cursor.execute(_MISSING, bind(_MISSING, values)).fetchall()
    unlinked = cursor.execute(_UNLINKED, bind(_UNLINKED, values)).fetchall()
    figures = cursor.execute(_BUS_WITHOUT_PRODUCER_FIGURES, bind(_BUS_WITHOUT_PRODUCER_FIGURES, values)).fetchall()
    count = figures[0][1]
    examples = [event_id for _, _, event_id, _ in figures[1:]]
    return {
        "missing_attributes": [
            {"service": service, "span_name": name, "kind": kind, "missing": attrs, "count": n}
            for service, name, kind, attrs, n in missing
        ],
        "unlinked_consumers": [{"service": service, "span_name": name, "count": n} for service, name, n in unlinked],
        "bus_without_producer": {"count": count, "examples": examples},
    }
