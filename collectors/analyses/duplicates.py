"""Duplicates: event ids seen more than once at one vantage point, and how each group coped.

For a consumer group, a copy skipped by its idempotency guard (outcome ``duplicate_skipped``) is
handled; every ``processed`` delivery of an id beyond the first is processed twice: the bug. A
copy handed over again after a failed or retried attempt (or marked redelivered) is a redelivery,
counted apart: it is not a duplicate (docs/analyses.md).
"""

from __future__ import annotations

from collectors.analyses import observations
from collectors.analyses.filters import Filters, bind
from collectors.ingest.conventions import Outcome
from collectors.storage.reader import Reader

# Ids seen more than once are found first with a bare count; the copies' figures and trace ids are
# gathered only for those.
_DUPLICATES = """
WITH o AS MATERIALIZED (SELECT vantage, channel, event_id, outcome, trace_id, t, tie, redelivered FROM ({relation})),
twice AS (SELECT vantage, channel, event_id FROM o GROUP BY ALL HAVING count(*) > 1),
copies AS (
    SELECT o.*, {redelivery} AS redelivery
    FROM o SEMI JOIN twice t ON t.vantage IS NOT DISTINCT FROM o.vantage AND t.channel IS NOT DISTINCT FROM o.channel
        AND t.event_id IS NOT DISTINCT FROM o.event_id
)
SELECT vantage, channel, event_id, count(*) AS copies,
       count(*) FILTER (outcome = '{skipped}') AS handled,
       greatest(count(*) FILTER (outcome = '{processed}') - 1, 0) AS processed,
       list(DISTINCT trace_id ORDER BY trace_id) FILTER (trace_id IS NOT NULL) AS trace_ids,
       count(*) FILTER (redelivery) AS redeliveries
FROM copies
GROUP BY ALL
ORDER BY vantage, channel, event_id
"""
# Only consumer groups see outcomes, so only they can see a redelivery.
_REDELIVERY = {
    observations.BUS: "false",
    observations.CONSUMERS: observations.redelivery("vantage, channel, event_id", "t, tie"),
}
_QUERIES = [
    _DUPLICATES.format(
        relation=r, redelivery=_REDELIVERY[r], skipped=Outcome.DUPLICATE_SKIPPED, processed=Outcome.PROCESSED
    )
    for r in (observations.BUS, observations.CONSUMERS)
]


def duplicates(cursor: Reader, filters: Filters) -> dict:
    """Every event seen more than once per vantage point; per group the handled, processed and redelivered copies."""
    found = []
    for sql in _QUERIES:
        for vantage, channel, event_id, copies, handled, processed, trace_ids, redeliveries in cursor.execute(
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
                    "redeliveries": redeliveries,
                }
            )
    by_group: dict = {}
    for entry in found:
        if entry["vantage"] != observations.BUS_VANTAGE:
            totals = by_group.setdefault(
                entry["vantage"], {"vantage": entry["vantage"], "handled": 0, "processed": 0, "redeliveries": 0}
            )
            for field in ("handled", "processed", "redeliveries"):
                totals[field] += entry[field]
    return {"duplicates": found, "by_group": list(by_group.values())}
