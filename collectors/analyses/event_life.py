"""The life of one event by id: its publication, its copies on the bus, every delivery with its
retries and dead letter, and a verdict in plain language. Also the dead-letter list, and the list of
deliveries that needed more than one attempt.

A delivery without a recorded outcome is ``processed``, or ``failed`` when its span is in error,
as everywhere in the analyses (collectors/analyses/observations.py).
"""

from __future__ import annotations

import json

from collectors.analyses import roles
from collectors.analyses.deliveries import PUBLISHES
from collectors.analyses.filters import Filters, bind, window
from collectors.analyses.observations import DELIVERED, FAILED_ATTEMPT, SPAN_OUTCOME, SPAN_REDELIVERED, redelivery
from collectors.analyses.streams import FAILED_ATTEMPT as FAILED_OUTCOMES
from collectors.ingest import conventions as cv
from collectors.ingest.conventions import Outcome
from collectors.storage.reader import Reader

_PUBLISHED = f"""
SELECT TraceId, SpanId, ServiceName, SpanName, Timestamp, Duration / 1e6, StatusCode, MsgDestination
FROM ({PUBLISHES}) WHERE MsgMessageId = $event_id ORDER BY Timestamp, SpanId
"""
_BUS = """
SELECT ArrivalNs, Channel, Pattern, Size, Source, Type, Subject, EventTime, Sequence, PartitionKey, TraceId
FROM bus_messages WHERE Valid AND EventId = $event_id ORDER BY ArrivalNs, ArrivalSeq
"""
_DELIVERIES = f"""
SELECT COALESCE(s.MsgConsumerGroup, s.ServiceName), s.SpanId, s.TraceId, s.Timestamp, s.Duration / 1e6,
       {SPAN_OUTCOME}, s.Attempts, s.Events, s.DeadLetterReason, s.StatusCode, {SPAN_REDELIVERED}
FROM ({DELIVERED}) s WHERE s.MsgMessageId = $event_id ORDER BY s.Timestamp, s.SpanId
"""
_DEAD_LETTERS = f"""
SELECT MsgMessageId, COALESCE(MsgConsumerGroup, ServiceName), MsgDestination, DeadLetterReason, Attempts,
       Timestamp, TraceId
FROM ({DELIVERED})
WHERE Outcome = '{Outcome.DEAD_LETTERED}'
  AND {window("Timestamp")}
  AND ($channel IS NULL OR MsgDestination = $channel)
  AND ($group IS NULL OR COALESCE(MsgConsumerGroup, ServiceName) = $group)
  AND ($type IS NULL OR CeType = $type) AND ($service IS NULL OR ServiceName = $service)
ORDER BY Timestamp DESC, SpanId
"""

# A delivery was retried (kind ``retry``) when it took more than one attempt, or recorded a retry span event
# (instrumentations that count no attempts). Each failed attempt adds a retry event (docs/events.md); from the
# attempt count alone, the failed attempts are all of them, less the last one when the delivery ended processed
# or skipped. A delivery is a redelivery (kind ``redelivery``) when the instrumentation marks it so, or an earlier
# delivery of the same message to the same group failed or was retried: its attempts are its delivery count or
# the deliveries seen so far, whichever is more, its failed attempts the earlier deliveries that failed or were
# retried, or were SQS receipts of a message SQS handed out again (not deleted in time), plus this one when it
# did not end well (a receipt says nothing of that).
_REDELIVERY = redelivery('"group", channel, event_id', "Timestamp, SpanId")
_RETRIED = f"""
WITH consumers AS (
    SELECT s.MsgMessageId AS event_id, COALESCE(s.MsgConsumerGroup, s.ServiceName) AS "group",
           s.MsgDestination AS channel, {SPAN_OUTCOME} AS outcome, s.Attempts, s.Events, s.Timestamp, s.TraceId,
           s.SpanId, {SPAN_REDELIVERED} AS redelivered, s.DeliveryCount
    FROM ({DELIVERED}) s
    WHERE {window("s.Timestamp")}
      AND ($channel IS NULL OR s.MsgDestination = $channel)
      AND ($group IS NULL OR COALESCE(s.MsgConsumerGroup, s.ServiceName) = $group)
      AND ($type IS NULL OR s.CeType = $type) AND ($service IS NULL OR s.ServiceName = $service)
),
-- only a message with a failed or retried delivery, or one marked redelivered, can have a redelivery
suspects AS (
    SELECT DISTINCT "group", channel, event_id FROM consumers
    WHERE event_id IS NOT NULL AND (outcome IN {FAILED_ATTEMPT} OR redelivered)
),
marked AS (
    SELECT c.*, {_REDELIVERY} AS redelivery,
           count(*) FILTER (outcome IN {FAILED_ATTEMPT} OR outcome = '{roles.RECEIVED}') OVER earlier
               AS failed_before, count(*) OVER earlier AS before
    FROM consumers c
    SEMI JOIN suspects s
        ON s."group" = c."group" AND s.channel IS NOT DISTINCT FROM c.channel AND s.event_id = c.event_id
    WINDOW earlier AS (PARTITION BY c."group", c.channel, c.event_id ORDER BY c.Timestamp, c.SpanId
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
retried AS (
    SELECT *, 'redelivery' AS kind FROM marked WHERE redelivery
    UNION ALL BY NAME
    SELECT c.*, 'retry' AS kind FROM consumers c
    WHERE (c.Attempts > 1
           OR (c.Events <> '[]' AND list_contains(json_extract_string(c.Events, '$[*].Name'), '{cv.RETRY_EVENT}')))
      AND NOT EXISTS (SELECT 1 FROM marked m WHERE m.redelivery AND m.TraceId = c.TraceId AND m.SpanId = c.SpanId)
)
SELECT 0 AS part, outcome, count(*), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM retried GROUP BY outcome
UNION ALL
SELECT * FROM (
    SELECT 1, outcome, NULL, event_id, "group", channel, Attempts, Events, Timestamp, TraceId, SpanId, kind,
           greatest(COALESCE(DeliveryCount, 0), before + 1), failed_before
    FROM retried ORDER BY Timestamp DESC, SpanId LIMIT $limit
)
"""


_ENDED_WELL = (Outcome.PROCESSED, Outcome.DUPLICATE_SKIPPED)


def retried(cursor: Reader, filters: Filters, limit: int) -> dict:
    """Deliveries that took more than one attempt, and redeliveries, newest first, and how they ended."""
    rows = cursor.execute(_RETRIED, bind(_RETRIED, {**filters.values(), "limit": limit})).fetchall()
    outcomes = {outcome: count for part, outcome, count, *_ in rows if part == 0}
    deliveries = []
    newest_first = sorted((r for r in rows if r[0] == 1), key=lambda r: (-r[8], r[10]))
    for row in newest_first:
        _, outcome, _, event_id, group, channel, attempts, events, t_ns, trace_id, span_id, kind, number, earlier = row
        retries = _retries(events)
        last_failed = 0 if outcome in _ENDED_WELL or outcome == roles.RECEIVED else 1
        failed = max(len(retries), (attempts or 0) - 1 + last_failed)
        if kind == "redelivery":
            attempts, failed = number, earlier + last_failed
        deliveries.append(
            {
                "event_id": event_id,
                "group": group,
                "channel": channel,
                "outcome": outcome,
                "kind": kind,
                "attempts": attempts or failed + 1 - last_failed,
                "failed_attempts": failed,
                "retries": retries,
                "t_ns": t_ns,
                "trace_id": trace_id,
                "span_id": span_id,
            }
        )
    return {"count": sum(outcomes.values()), "outcomes": outcomes, "retried": deliveries}


def _retries(events_json: str) -> list[dict]:
    return [
        {
            "attempt": e.get("Attributes", {}).get(cv.RETRY_ATTEMPT),
            "delay_ms": e.get("Attributes", {}).get(cv.RETRY_DELAY_MS),
            "t_ns": e.get("Timestamp"),
        }
        for e in json.loads(events_json)
        if e.get("Name") == cv.RETRY_EVENT
    ]


def _delivery(row: tuple) -> dict:
    group, span_id, trace_id, start, ms, outcome, attempts, events, reason, status, redelivered = row
    return {
        "group": group,
        "span_id": span_id,
        "trace_id": trace_id,
        "start_ns": start,
        "duration_ms": ms,
        "outcome": outcome or (Outcome.FAILED if status == "Error" else Outcome.PROCESSED),
        "attempts": attempts,
        "retries": _retries(events),
        "dead_letter_reason": reason,
        "redelivery": bool(redelivered),
    }


def _mark_redeliveries(deliveries: list[dict]) -> list[dict]:
    """A delivery after a failed or retried one of the same group is a redelivery (deliveries in time order)."""
    failed_groups: set = set()
    for d in deliveries:
        d["redelivery"] = d["redelivery"] or d["group"] in failed_groups
        if d["outcome"] in FAILED_OUTCOMES:
            failed_groups.add(d["group"])
    return deliveries


def verdict(published: list[dict], bus: list[dict], deliveries: list[dict]) -> str:
    """One paragraph that says what happened to the event."""
    parts = []
    if published:
        services = sorted({p["service"] for p in published})
        parts.append(f"Published {_times(len(published))} by {', '.join(services)}.")
    else:
        parts.append("No producer span was received for it.")
    parts.append(f"Seen on the bus {_times(len(bus))}." if bus else "The bus tap never saw it.")
    by_group: dict[str, list[dict]] = {}
    for d in deliveries:
        by_group.setdefault(d["group"], []).append(d)
    for group, seen in sorted(by_group.items()):
        outcomes = [d["outcome"] or "no outcome" for d in seen]
        retries = sum(len(d["retries"]) for d in seen)
        text = f"{group}: {', '.join(outcomes)}"
        if retries:
            text += f" after {retries} {'retry' if retries == 1 else 'retries'}"
        if any(d.get("redelivery") for d in seen):
            text += " (redelivered after a failed attempt)"
        if outcomes.count(Outcome.PROCESSED) > 1:
            text += " (processed more than once: a duplicate got through)"
        parts.append(text + ".")
    if not deliveries:
        parts.append("No consumer handled it.")
    return " ".join(parts)


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def event(cursor: Reader, event_id: str) -> dict | None:
    """Everything known of one event id, or None when nothing is."""
    values = {"event_id": event_id}
    published = [
        {
            "trace_id": t,
            "span_id": s,
            "service": service,
            "name": name,
            "start_ns": start,
            "duration_ms": ms,
            "status": status,
            "channel": channel,
        }
        for t, s, service, name, start, ms, status, channel in cursor.execute(_PUBLISHED, values).fetchall()
    ]
    names = ("arrival_ns", "channel", "pattern", "size", "source", "type", "subject", "event_time", "sequence")
    names += ("partitionkey", "trace_id")
    bus = [dict(zip(names, row, strict=True)) for row in cursor.execute(_BUS, values).fetchall()]
    deliveries = _mark_redeliveries([_delivery(row) for row in cursor.execute(_DELIVERIES, values).fetchall()])
    if not (published or bus or deliveries):
        return None
    return {
        "event_id": event_id,
        "published": published,
        "bus": bus,
        "deliveries": deliveries,
        "verdict": verdict(published, bus, deliveries),
    }


def dead_letters(cursor: Reader, filters: Filters) -> list[dict]:
    """Deliveries that ended in the dead-letter queue, newest first."""
    rows = cursor.execute(_DEAD_LETTERS, bind(_DEAD_LETTERS, filters.values())).fetchall()
    keys = ("event_id", "group", "channel", "reason", "attempts", "t_ns", "trace_id")
    return [dict(zip(keys, row, strict=True)) for row in rows]
