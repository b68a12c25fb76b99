"""Stream bookkeeping: received, duplicates, out of order, missing and open gaps. Pure logic.

A stream is (channel, source, partitionkey) seen at one vantage point (the bus tap, or one
consumer group). Observations arrive as (event id, sequence) pairs in the order the vantage point
saw them. Definitions (docs/analyses.md):

- duplicates: copies of an event id already seen in the stream at this vantage point;
- out of order: first copies whose sequence is lower than one already seen;
- missing: sequence numbers between the lowest and highest seen that were never seen;
- gaps: the missing numbers as inclusive [first, last] ranges.

A duplicate is counted only as a duplicate, never also as out of order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable


@dataclasses.dataclass
class StreamCounts:
    received: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    missing: int = 0
    gaps: list[list[int]] = dataclasses.field(default_factory=list)


def open_gaps(sequences: Iterable[int]) -> list[list[int]]:
    """Inclusive ranges of numbers absent between the lowest and highest of ``sequences``."""
    ordered = sorted(set(sequences))
    return [[low + 1, high - 1] for low, high in zip(ordered, ordered[1:], strict=False) if high - low > 1]


def count_stream(observations: Iterable[tuple[str, int | None]]) -> StreamCounts:
    """Count one stream's observations, given in the order the vantage point saw them."""
    counts = StreamCounts()
    seen_ids: set[str] = set()
    sequences: set[int] = set()
    highest: int | None = None
    for event_id, sequence in observations:
        counts.received += 1
        if event_id in seen_ids:
            counts.duplicates += 1
            continue
        seen_ids.add(event_id)
        if sequence is None:
            continue
        if highest is not None and sequence < highest:
            counts.out_of_order += 1
        highest = sequence if highest is None else max(highest, sequence)
        sequences.add(sequence)
    counts.gaps = open_gaps(sequences)
    counts.missing = sum(last - first + 1 for first, last in counts.gaps)
    return counts
