"""Deliveries: each CONSUMER span paired with the PRODUCER span of the event it handled.

Latency, the flow graph and loss all need that pairing. A consumer span is paired, in this order
of preference, through a span link to a producer span, through its parent when that parent is a
producer span, or else through the event id (the earliest producer span of the same id on the
same channel), which is what brokers without context propagation leave us. ``paired_by`` says
which one held. The common filters apply to the consumer side.
"""

from __future__ import annotations

from collectors.observations import SPAN_EVENT_ID, SPAN_OUTCOME

PRODUCERS = """
SELECT TraceId, SpanId, ServiceName, Timestamp, Duration, StatusCode, MsgDestination, MsgMessageId, CeType
FROM otel_traces WHERE SpanKind = 'Producer'
"""

DELIVERIES = f"""
WITH producers AS ({PRODUCERS}),
by_link AS (
    SELECT l.TraceId, l.SpanId, arg_min(p.SpanId, p.Timestamp) AS p_span, arg_min(p.TraceId, p.Timestamp) AS p_trace
    FROM span_links l JOIN producers p ON p.TraceId = l.LinkedTraceId AND p.SpanId = l.LinkedSpanId
    GROUP BY l.TraceId, l.SpanId
),
by_id AS (
    SELECT MsgDestination, MsgMessageId, arg_min(SpanId, Timestamp) AS p_span, arg_min(TraceId, Timestamp) AS p_trace
    FROM producers WHERE MsgMessageId IS NOT NULL GROUP BY ALL
),
consumers AS (
    SELECT s.*, {SPAN_EVENT_ID} AS event_id, COALESCE(s.MsgConsumerGroup, s.ServiceName) AS grp
    FROM otel_traces s
    WHERE s.SpanKind = 'Consumer' AND s.MsgDestination IS NOT NULL
      AND ($since_ns IS NULL OR s.Timestamp >= $since_ns) AND ($until_ns IS NULL OR s.Timestamp < $until_ns)
      AND ($channel IS NULL OR s.MsgDestination = $channel)
      AND ($group IS NULL OR COALESCE(s.MsgConsumerGroup, s.ServiceName) = $group)
      AND ($service IS NULL OR s.ServiceName = $service)
),
paired AS (
    SELECT c.*,
           COALESCE(by_link.p_trace, parent.TraceId, by_id.p_trace) AS p_trace,
           COALESCE(by_link.p_span, parent.SpanId, by_id.p_span) AS p_span,
           CASE WHEN by_link.p_span IS NOT NULL THEN 'link' WHEN parent.SpanId IS NOT NULL THEN 'parent'
                WHEN by_id.p_span IS NOT NULL THEN 'message_id' END AS paired_by
    FROM consumers c
    LEFT JOIN by_link ON by_link.TraceId = c.TraceId AND by_link.SpanId = c.SpanId
    LEFT JOIN producers parent ON parent.TraceId = c.TraceId AND parent.SpanId = c.ParentSpanId
    LEFT JOIN by_id ON by_id.MsgDestination = c.MsgDestination AND by_id.MsgMessageId = c.MsgMessageId
)
SELECT d.TraceId AS trace_id, d.SpanId AS span_id, d.grp AS "group", d.ServiceName AS service,
       d.MsgDestination AS channel, d.event_id, COALESCE(d.CeType, p.CeType) AS type, d.Timestamp AS t,
       d.Duration AS duration, {SPAN_OUTCOME.replace("s.", "d.")} AS outcome, d.StatusCode AS status,
       d.Attempts AS attempts,
       d.paired_by, p.TraceId AS producer_trace, p.SpanId AS producer_span, p.ServiceName AS producer_service,
       p.Timestamp AS producer_t,
       COALESCE(d.Outcome IN ('failed', 'dead_lettered'), d.StatusCode = 'Error') AS failed
FROM paired d LEFT JOIN producers p ON p.TraceId = d.p_trace AND p.SpanId = d.p_span
WHERE $type IS NULL OR COALESCE(d.CeType, p.CeType) = $type
"""
"""One row per consumer span: the delivery, its producer (NULLs when unpaired) and ``failed``."""
