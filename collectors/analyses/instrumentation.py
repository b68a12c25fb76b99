"""Instrumentation health: what in the incoming telemetry keeps the analyses from being exact.

- missing_attributes: publishes and deliveries (collectors/analyses/roles.py) without a messaging attribute
  the analyses key on (messaging.system, messaging.destination.name, messaging.message.id, and for consumers
  messaging.consumer.group.name);
- unlinked_consumers: deliveries with no span link at all and no parent that is a PRODUCER
  span, so no delivery latency or causal flow can be followed from them;
- bus_without_producer: events seen on the bus for which no producer span arrived, among those that
  arrived at least ``settle_s`` seconds ago: SDKs export in batches (every 5 s by default), so the
  newest events' producer spans are usually still on their way;
- blind_spots: what the analyses cannot see at all in this telemetry, why, and how to get it:
  messages on the bus without an envelope (no id, no sequence), consumer spans without a message id,
  producer spans without a destination, deliveries of messages that carry no sequence, SQS calls
  that name only the first message of a batch, Redis PUBLISH commands traced as database calls.
"""

from __future__ import annotations

import time

from collectors.analyses import roles
from collectors.analyses.filters import Filters, bind, window
from collectors.analyses.observations import SPAN_EVENT_ID
from collectors.ingest import conventions as cv
from collectors.storage.reader import Reader

EXAMPLES = 10
"""Example event ids returned for events on the bus without a producer span."""
DEFAULT_SETTLE_S = 15.0
"""Events younger than this are not yet held against their producer (batch export delay)."""

_SPAN_FILTERS = f"""
  AND {window("s.Timestamp")}
  AND ($channel IS NULL OR s.MsgDestination = $channel) AND ($type IS NULL OR s.CeType = $type)
  AND ($group IS NULL OR s.MsgConsumerGroup = $group) AND ($service IS NULL OR s.ServiceName = $service)
"""
_MISSING = f"""
SELECT ServiceName, SpanName, SpanKind, missing, count(*) FROM (
    SELECT s.ServiceName, s.SpanName, s.SpanKind, list_filter([
        CASE WHEN s.MsgSystem IS NULL THEN '{cv.MESSAGING_SYSTEM}' END,
        CASE WHEN s.MsgDestination IS NULL THEN '{cv.MESSAGING_DESTINATION}' END,
        CASE WHEN s.MsgMessageId IS NULL THEN '{cv.MESSAGING_MESSAGE_ID}' END,
        CASE WHEN NOT {roles.publish("s")} AND s.MsgConsumerGroup IS NULL THEN '{cv.MESSAGING_CONSUMER_GROUP}' END
    ], lambda a: a IS NOT NULL) AS missing
    FROM otel_traces s WHERE ({roles.publish("s")} OR {roles.delivery("s")}) {_SPAN_FILTERS}
) WHERE len(missing) > 0 GROUP BY ALL ORDER BY count(*) DESC, 1, 2, 3
"""
_UNLINKED = f"""
SELECT s.ServiceName, s.SpanName, count(*) FROM otel_traces s
WHERE {roles.delivery("s")}
  AND NOT EXISTS (SELECT 1 FROM span_links l WHERE l.TraceId = s.TraceId AND l.SpanId = s.SpanId)
  AND NOT EXISTS (SELECT 1 FROM otel_traces p WHERE p.TraceId = s.TraceId AND p.SpanId = s.ParentSpanId
                  AND {roles.publish("p")})
  {_SPAN_FILTERS}
GROUP BY ALL ORDER BY count(*) DESC, 1, 2, 3
"""
_BUS_WITHOUT_PRODUCER = f"""
SELECT DISTINCT b.EventId, b.ArrivalNs FROM bus_messages b
WHERE b.Valid AND NOT EXISTS (SELECT 1 FROM otel_traces p WHERE {roles.publish("p")} AND p.MsgMessageId = b.EventId)
  AND {window("b.ArrivalNs")}
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


ENVELOPE_HOW = (
    "Wrap each message in a CloudEvent with an id and a sequence: the Pub/Sub instrumentation does it for any "
    "redis-py app (pip install ./instrumentation/eventscope-redis; docs/events.md)."
)
BLIND_SPOTS = {
    "unenveloped": (
        ("duplicates", "gaps", "loss", "out of order", "the life of an event"),
        "Messages on the bus that are not CloudEvents carry no id and no sequence. " + ENVELOPE_HOW,
    ),
    "consumer_without_id": (
        ("duplicates", "redeliveries", "loss at delivery", "the life of an event"),
        f"Consumer spans name no message ({cv.MESSAGING_MESSAGE_ID}, or a partition offset). Give messages an id "
        "the instrumentation records (e.g. AMQP message_id), or " + ENVELOPE_HOW[0].lower() + ENVELOPE_HOW[1:],
    ),
    "producer_without_destination": (
        ("publish edges of the flow graph", "loss at delivery"),
        f"Producer spans name no destination ({cv.MESSAGING_DESTINATION} or an older name, docs/conventions.md).",
    ),
    "no_sequence": (
        ("gaps", "loss", "out of order"),
        "Delivered messages carry no sequence, so only received copies and duplicates can be counted. Number "
        "the messages: a CloudEvents sequence per stream (eventscope-redis does it), or a broker that numbers "
        "them (Kafka offsets).",
    ),
    "first_message_only": (
        ("messages of a batch beyond the first: their publishes, deliveries, redeliveries and loss",),
        "opentelemetry-instrumentation-botocore names only the first message of a SendMessageBatch or a "
        "ReceiveMessage (messaging.message.id), so each call counts as one publish or one delivery, of that "
        "message; the spans do not say how many a call carried, so with batches every count is a lower bound. "
        "They are exact when the app sends with SendMessage and receives one message per call "
        "(MaxNumberOfMessages=1).",
    ),
    "pubsub_as_db_call": (
        ("the channel", "the context", "the subscribers", "deliveries, latency, duplicates and loss"),
        "Redis Pub/Sub traced as a database call (opentelemetry-instrumentation-redis; ioredis and redis in "
        "Node.js): a PUBLISH span masks its arguments (PUBLISH ? ?), so it names no channel (only the Node.js "
        "instrumentations keep the channel, and then it is read), it carries no trace context into the message, "
        "and no span is made where the message is received, so no consumer can be seen. Trace Pub/Sub as messaging: "
        "the Pub/Sub instrumentation (pip install ./instrumentation/eventscope-redis, then "
        "RedisPubSubInstrumentor().instrument()) makes PRODUCER and CONSUMER spans that name the channel, carries "
        "the context in a CloudEvent, and numbers the messages (docs/events.md).",
    ),
}
"""kind -> (what cannot be seen, how to see it)."""
_BLIND_SPOTS = f"""
SELECT 'unenveloped' AS kind, count(*), list(DISTINCT Channel ORDER BY Channel) FROM bus_messages b
WHERE b.Kind = 'unenveloped' AND CAST($type AS VARCHAR) IS NULL AND ($channel IS NULL OR b.Channel = $channel)
  AND {window("b.ArrivalNs")}
UNION ALL
SELECT 'consumer_without_id', count(*), list(DISTINCT COALESCE(s.MsgDestination, s.SpanName)
                                                ORDER BY COALESCE(s.MsgDestination, s.SpanName))
FROM otel_traces s WHERE {roles.delivery("s")} AND {SPAN_EVENT_ID} IS NULL {_SPAN_FILTERS}
UNION ALL
SELECT 'producer_without_destination', count(*), list(DISTINCT s.ServiceName ORDER BY s.ServiceName)
FROM otel_traces s WHERE {roles.publish("s")} AND s.MsgDestination IS NULL {_SPAN_FILTERS}
UNION ALL
SELECT 'no_sequence', count(*), list(DISTINCT s.MsgDestination ORDER BY s.MsgDestination)
FROM otel_traces s
WHERE {roles.delivery("s")} AND s.MsgDestination IS NOT NULL AND {SPAN_EVENT_ID} IS NOT NULL AND s.Sequence IS NULL
  AND NOT EXISTS (SELECT 1 FROM bus_messages b WHERE b.Valid AND b.EventId = s.MsgMessageId AND b.Sequence IS NOT NULL)
  {_SPAN_FILTERS}
UNION ALL
SELECT 'first_message_only', count(*), list(DISTINCT s.MsgDestination ORDER BY s.MsgDestination)
FROM otel_traces s
WHERE ({roles.receipt("s")} OR (s.MsgSystem IN {roles.RECEIPT_SYSTEMS_SQL}
                                AND json_extract_string(s.SpanAttributes, '$."rpc.method"') = 'SendMessageBatch'))
  {_SPAN_FILTERS}
UNION ALL
SELECT 'pubsub_as_db_call', COALESCE(sum(n), 0), list(DISTINCT ServiceName ORDER BY ServiceName) FROM (
    SELECT s.ServiceName,
           len(list_filter(string_split(upper(s.SpanName), ' '), lambda c: c IN ('PUBLISH', 'SPUBLISH'))) AS n
    FROM otel_traces s
    WHERE s.SpanKind = 'Client' AND upper(s.SpanName) LIKE '%PUBLISH%'
      AND 'redis' IN (json_extract_string(s.SpanAttributes, '$."db.system"'),
                      json_extract_string(s.SpanAttributes, '$."db.system.name"'))
      {_SPAN_FILTERS}
)
"""


def blind_spots(cursor: Reader, filters: Filters) -> list[dict]:
    """What cannot be seen in the telemetry within the filters, where, and how to see it."""
    rows = cursor.execute(_BLIND_SPOTS, bind(_BLIND_SPOTS, filters.values())).fetchall()
    return [
        {"kind": kind, "count": n, "where": where or [], "cannot_see": list(BLIND_SPOTS[kind][0]),
         "how": BLIND_SPOTS[kind][1]}
        for kind, n, where in sorted(rows, key=lambda r: list(BLIND_SPOTS).index(r[0]))
        if n
    ]  # fmt: skip


def instrumentation(
    cursor: Reader, filters: Filters, settle_s: float = DEFAULT_SETTLE_S, now_ns: int | None = None
) -> dict:
    """The health findings within the filters."""
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
        "blind_spots": blind_spots(cursor, filters),
    }
