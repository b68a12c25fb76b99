"""Where events were lost: before the broker, at delivery, or in processing (docs/analyses.md).

- before_broker: each sequence number of a lost gap at the bus tap (the bus never saw it);
- at_delivery: an event that was published (the bus saw it, or a producer span sent it) to a
  channel a consumer group subscribes to, that the group never handled at all. A group counts as
  subscribed to a channel from the publication of the first event it handled there; an event
  counts only once it was published longer ago than the grace window, so one still in flight is
  not called lost. Where no publisher is visible (no tap, no producer span with an event id on
  the channel: Kafka), a lost gap at the group is lost at delivery;
- in_processing: the group received the event, but no delivery of it ended ``processed`` or
  ``duplicate_skipped``, and one ended ``failed`` or ``dead_lettered`` (or in error without an
  outcome).
"""

from __future__ import annotations

import time

from collectors.analyses import report, roles
from collectors.analyses.deliveries import DELIVERIES
from collectors.analyses.filters import Filters, bind, window
from collectors.analyses.observations import BUS_VANTAGE
from collectors.storage.reader import Reader

_PUBLISHED = f"""
SELECT Channel AS channel, EventId AS event_id, min(ArrivalNs) AS t, any_value(Source) AS source,
       any_value(PartitionKey) AS pk, any_value(Sequence) AS seq, any_value(Type) AS type
FROM bus_messages WHERE Valid GROUP BY ALL
UNION ALL BY NAME
SELECT MsgDestination AS channel, MsgMessageId AS event_id, min(Timestamp) AS t, any_value(CeSource) AS source,
       any_value(PartitionKey) AS pk, any_value(Sequence) AS seq, any_value(CeType) AS type
FROM otel_traces p
WHERE {roles.publish()} AND MsgDestination IS NOT NULL AND MsgMessageId IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM bus_messages b WHERE b.Valid AND b.Channel = p.MsgDestination
                  AND b.EventId = p.MsgMessageId)
GROUP BY ALL
"""

_LOSS = f"""
WITH d AS ({DELIVERIES}),
published AS ({_PUBLISHED}),
subscribed AS (
    SELECT d."group", d.channel, min(COALESCE(p.t, d.t)) AS since
    FROM d LEFT JOIN published p ON p.channel = d.channel AND p.event_id = d.event_id GROUP BY ALL
),
handled AS (
    SELECT "group", channel, event_id, bool_and(failed) AS all_failed FROM d GROUP BY ALL
)
SELECT p.channel, p.source, p.pk, p.seq, p.event_id, s."group",
       CASE WHEN h.event_id IS NULL THEN 'at_delivery' ELSE 'in_processing' END AS "where"
FROM published p
JOIN subscribed s ON s.channel = p.channel AND p.t >= s.since
LEFT JOIN handled h ON h."group" = s."group" AND h.channel = p.channel AND h.event_id = p.event_id
WHERE ((h.event_id IS NULL AND p.t < $lost_before) OR h.all_failed)
  AND {window("p.t")}
  AND ($type IS NULL OR p.type = $type)
ORDER BY p.channel, p.source NULLS FIRST, p.pk NULLS FIRST, p.seq NULLS LAST, p.event_id, s."group"
"""
_PUBLISHED_CHANNELS = f"""
SELECT DISTINCT Channel FROM bus_messages WHERE Valid
UNION SELECT DISTINCT MsgDestination FROM otel_traces
WHERE {roles.publish()} AND MsgDestination IS NOT NULL AND MsgMessageId IS NOT NULL
"""
WHERE = ("before_broker", "at_delivery", "in_processing")


def _entry(channel, source, pk, sequence, event_id, vantage, where) -> dict:
    return {
        "channel": channel,
        "source": source,
        "partitionkey": pk,
        "sequence": sequence,
        "event_id": event_id,
        "vantage": vantage,
        "where": where,
    }


def _gap_entries(streams: list[dict], vantage_filter, where: str) -> list[dict]:
    return [
        _entry(s["channel"], s["source"], s["partitionkey"], sequence, None, s["vantage"], where)
        for s in streams
        if vantage_filter(s)
        for low, high in s["lost_gaps"]
        for sequence in range(low, high + 1)
    ]


def loss(cursor: Reader, filters: Filters, grace_s: float = report.DEFAULT_GRACE_S, now_ns: int | None = None) -> dict:
    """Every lost event with the place it was lost, and the count per place."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    streams = report.streams(cursor, filters, grace_s, now_ns)
    published = {row[0] for row in cursor.execute(_PUBLISHED_CHANNELS).fetchall()}
    lost = _gap_entries(streams, lambda s: s["vantage"] == BUS_VANTAGE, "before_broker")
    values = {**filters.values(), "lost_before": now_ns - int(grace_s * 1e9)}
    lost += [_entry(*row) for row in cursor.execute(_LOSS, bind(_LOSS, values)).fetchall()]
    lost += _gap_entries(
        streams, lambda s: s["vantage"] != BUS_VANTAGE and s["channel"] not in published, "at_delivery"
    )
    return {"lost": lost, "counts": {where: sum(e["where"] == where for e in lost) for where in WHERE}}
