"""Sightings of events at each vantage point, as SQL relations the analyses share.

A sighting is one event seen once at one vantage point: a valid message at the bus tap, or a
CONSUMER span of one consumer group. Both relations have the same columns, so stream counting,
loss and duplicates are one definition applied to either (docs/analyses.md):

    vantage, channel, source, pk, event_id, seq, t, tie, outcome, type, trace_id, redelivered

``t`` then ``tie`` (the tap's arrival number, or the span id as a number) give the order the
vantage point saw them in. Consumer spans are read one per delivery (``DELIVERED``). A consumer span
without a consumer group is seen by its service (brokers without groups), and one without an outcome
counts as ``processed``, or ``failed`` when its status is ERROR, or ``retried`` when the broker handed
its message to the group again; ``redelivered`` is the instrumentation's own mark, or the broker's
that it does not record (NULL at the bus, and where neither says anything). A consumer span that
lacks the stream facts takes them from the bus tap's copy of the same event; an id-less span of a
broker that numbers its messages (Kafka) is identified by its position in the stream. The common
filters are named bound parameters (collectors/analyses/filters.py).
"""

from __future__ import annotations

from collectors.analyses import roles
from collectors.analyses.filters import window
from collectors.ingest.conventions import Outcome

BUS_VANTAGE = "bus"

PAIRED = "paired_deliveries"
"""The table of deliveries the writer keeps as spans arrive (collectors/storage/pairing.py): ``DELIVERED`` with each
delivery's outcome, redelivered mark, event id and paired producer, by the definition
collectors/analyses/deliveries.py ``PAIRING``, so that an answer reads them instead of deriving them again."""

BUS_FACTS = """
SELECT Channel, EventId, any_value(Source) AS Source, any_value(PartitionKey) AS PartitionKey,
       any_value(Sequence) AS Sequence, any_value(Type) AS Type, min(ArrivalNs) AS ArrivalNs
FROM bus_messages WHERE Valid GROUP BY Channel, EventId
"""

REDELIVERING_SYSTEMS = ("rabbitmq",)
"""Brokers that hand a message to a consumer of a queue again only as a redelivery (a nack or reject with requeue,
a channel closed before the ack), which the broker itself flags: AMQP 0-9-1's ``redelivered``. Their
instrumentations (pika, aio-pika, amqplib) do not record the flag, so it is read from the message's producer
context: one published message handed twice to one group (docs/analyses.md)."""

_ONCE = f"""
SELECT * FROM otel_traces s
WHERE {roles.delivery("s")} AND NOT EXISTS (
    SELECT 1 FROM otel_traces o
    WHERE {roles.delivery("o")} AND o.TraceId = s.TraceId AND o.ParentSpanId = s.ParentSpanId AND o.ParentSpanId <> ''
      AND o.ServiceName = s.ServiceName AND o.SpanId <> s.SpanId
      AND o.MsgConsumerGroup IS NOT DISTINCT FROM s.MsgConsumerGroup
      AND o.MsgDestination IS NOT DISTINCT FROM s.MsgDestination AND o.MsgMessageId IS NOT DISTINCT FROM s.MsgMessageId
      AND o.Timestamp < s.Timestamp AND o.Timestamp + o.Duration >= s.Timestamp + s.Duration)
"""
_SYSTEMS = ", ".join(f"'{system}'" for system in REDELIVERING_SYSTEMS)
_AGAIN = "PARTITION BY Origin, COALESCE(MsgConsumerGroup, ServiceName), MsgDestination, MsgMessageId"
_AGAIN += " ORDER BY Timestamp, SpanId"
_CARRIED = f"COALESCE(MsgSystem IN ({_SYSTEMS}) AND ParentSpanId <> '', false)"
# Each branch reads the spans itself (no shared CTE), so that only the columns a query uses are read.
DELIVERED = f"""
SELECT d.*, NULL::VARCHAR AS Origin, rr.SpanId IS NOT NULL AS Resent, false AS HandedBack
FROM (SELECT * FROM ({_ONCE}) WHERE NOT {_CARRIED}) d
LEFT JOIN ({roles.redelivered_receipts()}) rr ON rr.TraceId = d.TraceId AND rr.SpanId = d.SpanId
UNION ALL
SELECT *, count(*) OVER earlier > 0 AS Resent, count(*) OVER later > 0 AS HandedBack
FROM (SELECT *, concat(TraceId, '-', ParentSpanId) AS Origin FROM ({_ONCE}) WHERE {_CARRIED})
WINDOW earlier AS ({_AGAIN} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
       later AS ({_AGAIN} ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
"""
"""Deliveries (collectors/analyses/roles.py: CONSUMER spans and SQS receipts), one per delivery, with what the broker's
redelivered flag would say where it goes unrecorded.

One delivery recorded twice (pika 0.44 wraps a consumer's callback again at each ``basic_consume``) is two
CONSUMER spans of the same message, service and parent, the one starting after and ending within the other: only
the outer one counts (two deliveries at the same instant are two). ``Origin`` is the producer context a
delivery's message carried (its parent) on ``REDELIVERING_SYSTEMS``; ``Resent``: the same published message was
delivered to the same group before, or SQS handed out a message the group had received before
(``roles.redelivered_receipts``): a redelivery; ``HandedBack``: it is delivered to that group again later, so
this delivery was not acknowledged (docs/analyses.md)."""

SPAN_EVENT_ID = """COALESCE(s.MsgMessageId, CASE WHEN s.Sequence IS NOT NULL
    THEN concat(s.MsgDestination, '/', COALESCE(s.PartitionKey, ''), '@', s.Sequence) END)"""
"""The event id of a span; Kafka-like spans without one are named by partition and offset."""
SPAN_OUTCOME = f"""COALESCE(s.Outcome, CASE WHEN s.StatusCode = 'Error' THEN '{Outcome.FAILED}'
    WHEN s.HandedBack THEN '{Outcome.RETRIED}' WHEN s.SpanKind = 'Client' THEN '{roles.RECEIVED}'
    ELSE '{Outcome.PROCESSED}' END)"""
"""A delivery's outcome (of a ``DELIVERED`` row); spans of instrumentations that record none count by their status
(a receipt, collectors/analyses/roles.py, says nothing of processing), and a delivery the broker handed to the
group again was handed back unacknowledged: ``retried``."""
SPAN_REDELIVERED = "(COALESCE(s.Redelivered, false) OR s.Resent)"
"""The delivery is marked redelivered: by its instrumentation, or by what the broker says where the instrumentation
does not record it (``DELIVERED``: an SQS message received again, a RabbitMQ message handed to the group again)."""
FAILED_ATTEMPT = f"('{Outcome.FAILED}', '{Outcome.RETRIED}')"
"""Outcomes after which the next delivery of the same message to the same group is a redelivery."""


def redelivery(partition: str, order: str) -> str:
    """SQL: this sighting is a redelivery (marked so, or an earlier one of the same message failed or was retried).

    ``partition`` names one message at one vantage point; ``order`` is the order of sightings there.
    Needs the columns ``redelivered`` and ``outcome``.
    """
    return (
        f"(COALESCE(redelivered, false) OR COALESCE(bool_or(outcome IN {FAILED_ATTEMPT}) OVER "
        f"(PARTITION BY {partition} ORDER BY {order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false))"
    )


BUS = f"""
SELECT 'bus' AS vantage, Channel AS channel, Source AS source, PartitionKey AS pk, EventId AS event_id,
       Sequence AS seq, ArrivalNs AS t, ArrivalSeq AS tie, NULL::VARCHAR AS outcome, Type AS type,
       TraceId AS trace_id, NULL::BOOLEAN AS redelivered
FROM bus_messages
WHERE Valid AND CAST($group AS VARCHAR) IS NULL
  AND {window("ArrivalNs")}
  AND ($channel IS NULL OR Channel = $channel) AND ($type IS NULL OR Type = $type)
  AND ($service IS NULL OR EventId IN (
      SELECT MsgMessageId FROM otel_traces WHERE {roles.publish()} AND ServiceName = $service))
"""

_CONSUMER_SPANS = f"""
SELECT s.MsgConsumerGroup, s.ServiceName, s.MsgDestination, s.MsgMessageId, s.CeSource, s.PartitionKey, s.Sequence,
       s.CeType, s.Timestamp, s.SpanId, s.TraceId, s.redelivered AS Redelivered, s.outcome, s.event_id
FROM {PAIRED} s
WHERE s.MsgDestination IS NOT NULL
  AND s.event_id IS NOT NULL
  AND {window("s.Timestamp")}
  AND ($channel IS NULL OR s.MsgDestination = $channel)
  AND ($group IS NULL OR s.grp = $group)
  AND ($service IS NULL OR s.ServiceName = $service)
"""
_COMPLETE = "s.CeSource IS NOT NULL AND s.PartitionKey IS NOT NULL AND s.Sequence IS NOT NULL AND s.CeType IS NOT NULL"
_CONSUMER_COLUMNS = """
SELECT COALESCE(s.MsgConsumerGroup, s.ServiceName) AS vantage, s.MsgDestination AS channel,
       COALESCE(s.CeSource, bus.Source) AS source, COALESCE(s.PartitionKey, bus.PartitionKey) AS pk,
       s.event_id, COALESCE(s.Sequence, bus.Sequence) AS seq,
       s.Timestamp AS t, TRY_CAST(('0x' || s.SpanId) AS UBIGINT) AS tie, s.outcome,
       COALESCE(s.CeType, bus.Type) AS type, s.TraceId AS trace_id, s.Redelivered AS redelivered
"""
# Spans that carry every stream fact need nothing from the tap; only the others are joined with it.
CONSUMERS = f"""
{_CONSUMER_COLUMNS}
FROM ({_CONSUMER_SPANS}) s, (SELECT NULL::VARCHAR AS Source, NULL::VARCHAR AS PartitionKey,
                              NULL::BIGINT AS Sequence, NULL::VARCHAR AS Type) bus
WHERE {_COMPLETE} AND ($type IS NULL OR s.CeType = $type)
UNION ALL
{_CONSUMER_COLUMNS}
FROM ({_CONSUMER_SPANS}) s
LEFT JOIN ({BUS_FACTS}) bus ON bus.Channel = s.MsgDestination AND bus.EventId = s.MsgMessageId
WHERE NOT ({_COMPLETE}) AND ($type IS NULL OR COALESCE(s.CeType, bus.Type) = $type)
"""
