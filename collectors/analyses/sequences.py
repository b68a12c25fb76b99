"""One stream at one vantage point, arrival by arrival: for the sequence chart.

Each arrival says whether it came late (its sequence is lower than one already seen) or was a
duplicate (its event id was already seen), by the same definitions as the report; the stream's
open and lost gaps come with it.
"""

from __future__ import annotations

import time

from collectors.analyses import observations, report
from collectors.analyses.filters import Filters, bind
from collectors.analyses.streams import count_stream
from collectors.storage.reader import Reader

_ONE_STREAM = """
SELECT event_id, seq, t, outcome FROM ({relation})
WHERE vantage = $vantage AND source IS NOT DISTINCT FROM $source AND pk IS NOT DISTINCT FROM $pk
ORDER BY t, tie
"""
_BUS = _ONE_STREAM.format(relation=observations.BUS)
_CONSUMERS = _ONE_STREAM.format(relation=observations.CONSUMERS)


def _arrivals(rows: list[tuple]) -> list[dict]:
    seen: set = set()
    highest = None
    arrivals = []
    for event_id, sequence, t_ns, _ in rows:
        duplicate = event_id in seen
        late = not duplicate and sequence is not None and highest is not None and sequence < highest
        if not duplicate and sequence is not None:
            highest = sequence if highest is None else max(highest, sequence)
        seen.add(event_id)
        arrivals.append(
            {"t_ns": t_ns, "sequence": sequence, "event_id": event_id, "late": late, "duplicate": duplicate}
        )
    return arrivals


def sequences(
    cursor: Reader,
    filters: Filters,
    source: str | None,
    partitionkey: str | None,
    vantage: str,
    limit: int,
    grace_s: float = report.DEFAULT_GRACE_S,
) -> dict:
    """The last ``limit`` arrivals of one stream at one vantage point, with its gaps and lost gaps."""
    sql = _BUS if vantage == observations.BUS_VANTAGE else _CONSUMERS
    scoped = Filters(filters.since_ns, filters.until_ns, filters.channel, None, filters.type, filters.service)
    values = {**scoped.values(), "vantage": vantage, "source": source, "pk": partitionkey}
    rows = cursor.execute(sql, bind(sql, values)).fetchall()
    counts = count_stream(rows, time.time_ns(), int(grace_s * 1e9))
    return {"arrivals": _arrivals(rows)[-limit:], "gaps": counts.gaps, "lost_gaps": counts.lost_gaps}
