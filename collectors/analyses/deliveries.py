"""Deliveries: each CONSUMER span paired with the PRODUCER span of the event it handled.

Latency, the flow graph and loss all need that pairing. A consumer span is paired, in this order
of preference, through a span link to a producer span, through its parent when that parent is a
producer span, or else through the event id (the earliest producer span of the same id on the
same channel), which is what brokers without context propagation leave us. ``paired_by`` says
which one held. The common filters apply to the consumer side. The pairing of every delivery
(``PAIRING``) is kept by the writer as a table (collectors/storage/pairing.py); ``DELIVERIES`` reads it.
"""

from __future__ import annotations

from collectors.analyses import roles
from collectors.analyses.filters import window
from collectors.analyses.observations import DELIVERED, PAIRED, SPAN_EVENT_ID, SPAN_OUTCOME, SPAN_REDELIVERED
from collectors.ingest.conventions import Outcome

PUBLISHES = f"""
SELECT * FROM otel_traces p
WHERE {roles.publish("p")} AND NOT EXISTS (
    SELECT 1 FROM otel_traces c
    WHERE {roles.publish("c")} AND c.TraceId = p.TraceId AND c.ParentSpanId = p.SpanId
      AND c.MsgDestination IS NOT DISTINCT FROM p.MsgDestination AND c.MsgMessageId IS NOT DISTINCT FROM p.MsgMessageId)
"""
"""PRODUCER spans, one per publish: a PRODUCER span whose child is a PRODUCER span of the same message to the
same destination is the outer half of one publish that an instrumentation recorded twice (pika 0.66 wraps both
BlockingChannel.basic_publish and the channel's own), so only the inner span, whose context the message carries,
counts (docs/conventions.md)."""
PRODUCERS = f"""
SELECT TraceId, SpanId, ServiceName, Timestamp, Duration, StatusCode, MsgDestination, MsgMessageId, CeType
FROM ({PUBLISHES})
"""
# The paired producer's columns are carried through the pairing, so no second join is needed to read them. The
# earliest producer wins; producers that started at the same instant are told apart by their ids, so the choice
# never depends on the order the spans were stored in.
_FIRST = "(p.Timestamp, p.TraceId, p.SpanId)"
_PRODUCER = f"""arg_min(p.TraceId, {_FIRST}) AS p_trace, arg_min(p.SpanId, {_FIRST}) AS p_span,
    arg_min(p.ServiceName, {_FIRST}) AS p_service, min(p.Timestamp) AS p_t,
    arg_min(p.CeType, {_FIRST}) AS p_type"""

PAIRING = f"""
WITH producers AS ({PRODUCERS}),
by_link AS (
    SELECT l.TraceId, l.SpanId, {_PRODUCER}
    FROM span_links l JOIN producers p ON p.TraceId = l.LinkedTraceId AND p.SpanId = l.LinkedSpanId
    GROUP BY l.TraceId, l.SpanId
),
by_id AS (
    SELECT MsgDestination, MsgMessageId, {_PRODUCER}
    FROM producers p WHERE MsgMessageId IS NOT NULL GROUP BY ALL
),
consumers AS (
    SELECT s.TraceId, s.SpanId, s.ParentSpanId, s.ServiceName, s.MsgConsumerGroup, s.MsgDestination, s.MsgMessageId,
           s.CeType, s.CeSource, s.PartitionKey, s.Sequence, s.Timestamp, s.Duration, s.StatusCode, s.Attempts,
           {SPAN_OUTCOME} AS outcome, {SPAN_REDELIVERED} AS redelivered, {SPAN_EVENT_ID} AS event_id,
           COALESCE(s.MsgConsumerGroup, s.ServiceName) AS grp,
           COALESCE(s.Outcome IN ('{Outcome.FAILED}', '{Outcome.DEAD_LETTERED}'), s.StatusCode = 'Error') AS failed
    FROM ({DELIVERED}) s
),
paired AS (
    SELECT c.*,
           CASE WHEN by_link.p_span IS NOT NULL THEN 'link' WHEN p.SpanId IS NOT NULL THEN 'parent'
                WHEN by_id.p_span IS NOT NULL THEN 'message_id' END AS paired_by,
           COALESCE(by_link.p_trace, p.TraceId, by_id.p_trace) AS producer_trace,
           COALESCE(by_link.p_span, p.SpanId, by_id.p_span) AS producer_span,
           CASE paired_by WHEN 'link' THEN by_link.p_service WHEN 'parent' THEN p.ServiceName
                WHEN 'message_id' THEN by_id.p_service END AS producer_service,
           CASE paired_by WHEN 'link' THEN by_link.p_t WHEN 'parent' THEN p.Timestamp
                WHEN 'message_id' THEN by_id.p_t END AS producer_t,
           CASE paired_by WHEN 'link' THEN by_link.p_type WHEN 'parent' THEN p.CeType
                WHEN 'message_id' THEN by_id.p_type END AS producer_type
    FROM consumers c
    LEFT JOIN by_link ON by_link.TraceId = c.TraceId AND by_link.SpanId = c.SpanId
    LEFT JOIN producers p ON p.TraceId = c.TraceId AND p.SpanId = c.ParentSpanId
    LEFT JOIN by_id ON by_id.MsgDestination = c.MsgDestination AND by_id.MsgMessageId = c.MsgMessageId
)
SELECT TraceId, SpanId, ServiceName, MsgConsumerGroup, grp, MsgDestination, MsgMessageId, event_id, CeType, CeSource,
       PartitionKey, Sequence, Timestamp, Duration, StatusCode, Attempts, outcome, redelivered, failed, paired_by,
       producer_trace, producer_span, producer_service, producer_t, producer_type
FROM paired
"""
"""Every delivery (``DELIVERED``, one row per consumer span or receipt) with its stream facts, outcome, redelivered
mark and paired producer (NULLs when unpaired), over the whole store: the definition of the ``PAIRED`` table that
the writer keeps (collectors/storage/pairing.py), which must always equal this query run from scratch."""

DELIVERIES = f"""
SELECT d.TraceId AS trace_id, d.SpanId AS span_id, d.grp AS "group", d.ServiceName AS service,
       d.MsgDestination AS channel, d.event_id, COALESCE(d.CeType, d.producer_type) AS type, d.Timestamp AS t,
       d.Duration AS duration, d.outcome, d.StatusCode AS status, d.Attempts AS attempts, d.paired_by,
       d.producer_trace, d.producer_span, d.producer_service, d.producer_t, d.failed
FROM {PAIRED} d
WHERE d.MsgDestination IS NOT NULL
  AND {window("d.Timestamp")}
  AND ($channel IS NULL OR d.MsgDestination = $channel)
  AND ($group IS NULL OR d.grp = $group)
  AND ($service IS NULL OR d.ServiceName = $service)
  AND ($type IS NULL OR COALESCE(d.CeType, d.producer_type) = $type)
"""
"""One row per consumer span: the delivery, its producer (NULLs when unpaired) and ``failed``."""
