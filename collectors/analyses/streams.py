"""Stream bookkeeping in plain Python: the reference definitions the SQL report is tested against.

A stream is (channel, source, partitionkey) seen at one vantage point (the bus tap, or one
consumer group). Observations arrive as (event id, sequence[, time ns[, outcome[, redelivered[, origin]]]])
tuples in the order the vantage point saw them. ``origin`` names the published message a delivery
carries (its producer context) on brokers that flag what they hand over again, else None; an
observation without an outcome counts as ``processed``, or as ``retried`` when the same published
message (same id and origin) reaches the vantage point again later: it was handed back unacknowledged.
Definitions (docs/analyses.md):

- redeliveries: observations the instrumentation marks as redelivered, or whose event id was seen
  earlier in the stream with outcome ``failed`` or ``retried`` (the same message handed over again
  after a failed attempt), or whose published message (id and origin) was seen earlier;
- duplicates: copies of an event id already seen in the stream at this vantage point that are not
  redeliveries;
- out of order: first copies whose sequence is lower than one already seen;
- missing: sequence numbers between the lowest and highest seen that were never seen;
- gaps: the missing numbers as inclusive [first, last] ranges;
- lost / lost_gaps: the missing numbers of gaps whose newer neighbour (the lowest sequence above
  the gap) was first seen more than the grace window before now;
- duplicates_handled: observations whose outcome is ``duplicate_skipped`` (the idempotency guard
  worked); duplicates_processed: ``processed`` observations of an id beyond its first (the bug).

A duplicate is counted only as a duplicate, never also as out of order. collectors/analyses/report.py
computes the same in SQL; this module stays small and obvious on purpose.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable

from collectors.ingest.conventions import Outcome

FAILED_ATTEMPT = (Outcome.FAILED, Outcome.RETRIED)
"""Outcomes after which the next delivery of the same message is a redelivery."""


@dataclasses.dataclass
class StreamCounts:
    """One stream's figures at one vantage point, as defined above."""

    received: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    missing: int = 0
    gaps: list[list[int]] = dataclasses.field(default_factory=list)
    lost: int = 0
    lost_gaps: list[list[int]] = dataclasses.field(default_factory=list)
    duplicates_handled: int = 0
    duplicates_processed: int = 0
    redeliveries: int = 0


def open_gaps(sequences: Iterable[int]) -> list[list[int]]:
    """Inclusive ranges of numbers absent between the lowest and highest of ``sequences``."""
    ordered = sorted(set(sequences))
    return [[low + 1, high - 1] for low, high in zip(ordered, ordered[1:], strict=False) if high - low > 1]


def count_stream(observations: Iterable[tuple], now_ns: int | None = None, grace_ns: int = 0) -> StreamCounts:
    """Count one stream's observations, given in the order the vantage point saw them.

    Without ``now_ns`` nothing is lost; observations without a time never make a gap lost.
    """
    counts = StreamCounts()
    seen_ids: set = set()
    first_seen: dict[int, int | None] = {}
    processed: Counter = Counter()
    failed_before: set = set()
    origins: set = set()
    highest: int | None = None
    rows = [tuple(o) + (None,) * (6 - len(o)) for o in observations]
    handed_back = _handed_back(rows)
    for at, (event_id, sequence, t_ns, outcome, redelivered, origin) in enumerate(rows):
        if outcome is None:
            outcome = Outcome.RETRIED if at in handed_back else Outcome.PROCESSED
        counts.received += 1
        counts.duplicates_handled += outcome == Outcome.DUPLICATE_SKIPPED
        processed[event_id] += outcome == Outcome.PROCESSED
        redelivery = bool(redelivered) or event_id in failed_before or (event_id, origin) in origins
        counts.redeliveries += redelivery
        if outcome in FAILED_ATTEMPT:
            failed_before.add(event_id)
        if origin is not None:
            origins.add((event_id, origin))
        if event_id in seen_ids:
            counts.duplicates += not redelivery
            continue
        seen_ids.add(event_id)
        if sequence is None:
            continue
        if highest is not None and sequence < highest:
            counts.out_of_order += 1
        highest = sequence if highest is None else max(highest, sequence)
        if sequence not in first_seen or _earlier(t_ns, first_seen[sequence]):
            first_seen[sequence] = t_ns
    counts.gaps = open_gaps(first_seen)
    counts.missing = sum(last - first + 1 for first, last in counts.gaps)
    counts.duplicates_processed = sum(n - 1 for n in processed.values() if n > 1)
    if now_ns is not None:
        counts.lost_gaps = [g for g in counts.gaps if _older(first_seen[g[1] + 1], now_ns - grace_ns)]
        counts.lost = sum(last - first + 1 for first, last in counts.lost_gaps)
    return counts


def _handed_back(rows: list[tuple]) -> set[int]:
    """Positions of observations whose published message (id and origin) is seen again after them."""
    last: dict = {}
    for at, row in enumerate(rows):
        if row[5] is not None:
            last[(row[0], row[5])] = at
    return {at for at, row in enumerate(rows) if row[5] is not None and last[(row[0], row[5])] > at}


def _earlier(t_ns: int | None, other: int | None) -> bool:
    return t_ns is not None and (other is None or t_ns < other)


def _older(t_ns: int | None, before_ns: int) -> bool:
    return t_ns is not None and t_ns < before_ns
