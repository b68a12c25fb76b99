"""The overview: the headline numbers of the whole event flow within the filters."""

from __future__ import annotations

import time

from collectors.analyses import report, roles
from collectors.analyses.deliveries import DELIVERIES
from collectors.analyses.filters import Filters, bind, window
from collectors.ingest.conventions import Outcome
from collectors.storage.reader import Reader

_BUS = f"""
SELECT count(*) FILTER (Valid), count(DISTINCT EventId) FILTER (Valid), count(*) FILTER (Kind = 'malformed'),
       min(ArrivalNs), max(ArrivalNs), count(*), count(*) FILTER (Kind = 'unenveloped')
FROM bus_messages
WHERE {window("ArrivalNs")}
  AND ($channel IS NULL OR Channel = $channel) AND ($type IS NULL OR Type = $type OR NOT Valid)
"""
_SPANS = f"""
SELECT count(*), count(DISTINCT MsgMessageId) FILTER ({roles.publish()}), min(Timestamp), max(Timestamp)
FROM otel_traces s
WHERE {window("s.Timestamp")}
  AND ($channel IS NULL OR s.MsgDestination = $channel) AND ($type IS NULL OR s.CeType = $type)
  AND ($group IS NULL OR s.MsgConsumerGroup = $group) AND ($service IS NULL OR s.ServiceName = $service)
"""
_DELIVERY = f"""
SELECT count(*), count(*) FILTER (outcome = '{Outcome.DEAD_LETTERED}'),
       quantile_cont((t - producer_t) / 1e6, 0.95) FILTER (producer_t IS NOT NULL)
FROM ({DELIVERIES})
"""


def overview(cursor: Reader, filters: Filters, grace_s: float = report.DEFAULT_GRACE_S) -> dict:
    """Counts, rates and the p95 delivery latency; see docs/api.md for each field."""
    values = filters.values()
    bus, bus_events, malformed, bus_low, bus_high, messages, unenveloped = cursor.execute(
        _BUS, bind(_BUS, values)
    ).fetchone()
    spans, produced, span_low, span_high = cursor.execute(_SPANS, bind(_SPANS, values)).fetchone()
    deliveries, dead_letters, p95 = cursor.execute(_DELIVERY, bind(_DELIVERY, values)).fetchone()
    streams = report.streams(cursor, filters, grace_s)
    first_seen = _least(bus_low, span_low)
    since = filters.since_ns if filters.since_ns is not None else first_seen
    until = filters.until_ns if filters.until_ns is not None else _greatest(bus_high, span_high)
    # a rate over a window that opened before the first event would understate it (a fresh demo)
    seconds = max(((until or 0) - (_greatest(since, first_seen) or 0)) / 1e9, 1.0)
    return {
        "window": {"since_ns": since, "until_ns": until},
        # an unenveloped message has no id to tell copies apart: each one counts as an event
        "events_per_s": max(bus_events + unenveloped, produced) / seconds,
        "bus_messages": bus,
        "messages": messages,
        "unenveloped": unenveloped,
        "deliveries": deliveries,
        "missing": sum(s["missing"] for s in streams),
        "lost": sum(s["lost"] for s in streams),
        "duplicates": sum(s["duplicates"] for s in streams),
        "duplicates_processed": sum(s.get("duplicates_processed", 0) for s in streams),
        "redeliveries": sum(s.get("redeliveries", 0) for s in streams),
        "out_of_order": sum(s["out_of_order"] for s in streams),
        "dead_letters": dead_letters,
        "malformed": malformed,
        "p95_delivery_ms": p95,
        "spans": spans,
        "generated_at_ns": time.time_ns(),
    }


def _least(*values):
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _greatest(*values):
    present = [v for v in values if v is not None]
    return max(present) if present else None
