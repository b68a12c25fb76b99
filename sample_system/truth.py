"""Ground truth: one JSON line per fault injection, written apart from anything a detector reads.

The record shape is fixed by the shared contract: ``fault``, ``event_id``, ``channel``, ``source``,
``partitionkey``, ``sequence``, ``group``, ``time_ns``, ``detail``. Tests score detectors against
this file, so every line is flushed as it is written and counts are kept in memory as well.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import threading
import time
from collections import Counter
from pathlib import Path


class Fault(enum.StrEnum):
    """Every kind of ground-truth record, named once: the faults, and the dead letters a delivery ends in.

    The fault catalogue (sample_system.faults) describes and switches the faults by these names, their
    steps around publish and delivery write records of these kinds, and the scoring reads them back.
    """

    DUPLICATE_PUBLISH = "duplicate_publish"
    REORDER = "reorder"
    DROP_BEFORE_BROKER = "drop_before_broker"
    CONSUMER_CRASH = "consumer_crash"
    SLOW_CONSUMER = "slow_consumer"
    POISON_MESSAGE = "poison_message"
    TRANSIENT_ERROR = "transient_error"
    DEAD_LETTER = "dead_letter"
    CLOCK_SKEW = "clock_skew"
    DOUBLE_SUBSCRIPTION = "double_subscription"


KINDS = tuple(kind.value for kind in Fault)


class Unit(enum.StrEnum):
    """What one injection is, in the fields of its record: the unit a fault is counted in.

    A scoring counts what was injected and what was found in the same unit, so that a late event seen at
    the bus and at two groups is one fault found, and a crash that lost one event to one group is one.
    """

    EVENT = "event"  # event_id
    DELIVERY = "delivery"  # event_id at group: one (event, consumer group) pair
    ATTEMPT = "attempt"  # event_id at group, detail.attempt: one failed attempt
    SEQUENCE = "sequence"  # channel, source, partitionkey, sequence: a number that never reached the broker
    WINDOW = "window"  # group from time_ns for detail.for_s seconds: a slow window


@dataclasses.dataclass(frozen=True)
class Sighting:
    """Which of eventscope's findings shows a fault kind, and the unit both are counted in.

    ``also`` names findings the fault causes besides, at the group it was injected in (within their
    window, for a window finding), so that they are not taken for faults nobody injected; ``when`` names
    a parameter (in the record's detail) without which it causes none.
    """

    seen_as: str
    unit: Unit
    also: tuple[tuple[str, str | None], ...] = ()

    def describe(self) -> dict:
        also = [{"finding": finding, "when": when} for finding, when in self.also]
        return {"seen_as": self.seen_as, "unit": str(self.unit), "also_seen_as": also}


SIGHTINGS: dict[Fault, Sighting] = {
    Fault.DUPLICATE_PUBLISH: Sighting("published_twice", Unit.EVENT),
    Fault.DOUBLE_SUBSCRIPTION: Sighting("delivered_twice", Unit.DELIVERY),
    Fault.REORDER: Sighting("late", Unit.EVENT),
    Fault.DROP_BEFORE_BROKER: Sighting("lost_before_broker", Unit.SEQUENCE),
    Fault.CONSUMER_CRASH: Sighting("lost_at_delivery", Unit.DELIVERY),
    # Redis cuts off a subscriber whose output buffer outgrew the lowered limit: what the buffer held is lost
    Fault.SLOW_CONSUMER: Sighting("fell_behind", Unit.WINDOW, (("lost_at_delivery", "buffer_limit_kb"),)),
    Fault.POISON_MESSAGE: Sighting("dead_lettered_at_first_attempt", Unit.EVENT),
    # a group retrying with backoff falls behind its peers while it retries
    Fault.TRANSIENT_ERROR: Sighting("failed_attempt", Unit.ATTEMPT, (("fell_behind", None),)),
    Fault.DEAD_LETTER: Sighting("dead_lettered", Unit.DELIVERY),
    Fault.CLOCK_SKEW: Sighting("negative_delivery_time", Unit.EVENT),
}
"""How eventscope shows each kind of record (the names are its findings; the Scenarios page scores by them)."""


def record(
    fault: str, channel: str, event: dict | None = None, group: str | None = None, detail: dict | None = None
) -> dict:
    """A ground-truth record for ``event`` (or for no single event when it is None)."""
    if fault not in KINDS:
        raise ValueError(f"unknown fault kind {fault!r}")
    event = event or {}
    sequence = event.get("sequence")
    return {
        "fault": str(fault),
        "event_id": event.get("id"),
        "channel": channel,
        "source": event.get("source"),
        "partitionkey": event.get("partitionkey"),
        "sequence": int(sequence) if isinstance(sequence, str) and sequence.isdigit() else None,
        "group": group,
        "time_ns": time.time_ns(),
        "detail": detail or {},
    }


class GroundTruth:
    """Appends records to a JSON-lines file (or only counts them when there is no file)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self.counts: Counter[str] = Counter()
        self.records: list[dict] = []
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8") if self.path else None  # noqa: SIM115 - closed in close()

    def write(self, entry: dict) -> None:
        """Append one record; safe from any thread."""
        line = json.dumps(entry, separators=(",", ":"))
        with self._lock:
            self.counts[entry["fault"]] += 1
            self.records.append(entry)
            if self._file:
                self._file.write(line + "\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file:
                self._file.close()
                self._file = None


def read(path: str | Path) -> list[dict]:
    """Every record of a ground-truth file."""
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
