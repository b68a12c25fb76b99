"""Duplicates: event ids seen more than once at one vantage point, and how each group coped.

For a consumer group, a copy skipped by its idempotency guard (outcome ``duplicate_skipped``) is
handled; every ``processed`` delivery of an id beyond the first is processed twice: the bug.
"""

from __future__ import annotations

from collectors import observations
from collectors.filters import Filters, bind

# Ids seen more than once are found first with a bare count; the copies' figures and trace ids are
# gathered only for those.
_DUPLICATES = """
WITH o AS MATERIALIZED (SELECT vantage, channel, event_id, outcome, trace_id FROM ({relation})),
twice AS (SELECT vantage, channel, event_id FROM o GROUP BY ALL HAVING count(*) > 1)
SELECT o.vantage, o.channel, o.event_id, count(*) AS copies,
       count(*) FILTER (o.outcome = 'duplicate_skipped') AS handled,
       greatest(count(*) FILTER (o.outcome = 'processed') - 1, 0) AS processed,
       list(DISTINCT o.trace_id ORDER BY o.trace_id) FILTER (o.trace_id IS NOT NULL) AS trace_ids
FROM o SEMI JOIN twice t ON t.vantage IS NOT DISTINCT FROM o.vantage AND t.channel IS NOT DISTINCT FROM o.channel
    AND t.event_id IS NOT DISTINCT FROM o.event_id
GROUP BY ALL
ORDER BY o.vantage, o.channel, o.event_id
"""
_QUERIES = [_DUPLICATES.format(relation=r) for r in (observations.BUS, observations.CONSUMERS)]


def duplicates(cursor, filters: Filters) -> dict:
    """Every duplicated event per vantage point, and per group the handled and processed copies."""
    found = []
    for sql in _QUERIES:
        for vantage, channel, event_id, copies, handled, processed, trace_ids in cursor.execute(
            sql, bind(sql, filters.values())
        ).fetchall():
            found.append(
                {
                    "vantage": vantage,
                    "channel": channel,
                    "event_id": event_id,
                    "copies": copies,
                    "handled": handled,
                    "processed": processed,
                    "trace_ids": trace_ids or [],
                }
            )
    by_group: dict = {}
    for entry in found:
        if entry["vantage"] != observations.BUS_VANTAGE:
            totals = by_group.setdefault(entry["vantage"], {"vantage": entry["vantage"], "handled": 0, "processed": 0})
            totals["handled"] += entry["handled"]
            totals["processed"] += entry["processed"]
    return {"duplicates": found, "by_group": list(by_group.values())}
