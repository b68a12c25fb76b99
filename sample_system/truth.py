"""Ground truth: one JSON line per fault injection, written apart from anything a detector reads.

The record shape is fixed by the shared contract: ``fault``, ``event_id``, ``channel``, ``source``,
``partitionkey``, ``sequence``, ``group``, ``time_ns``, ``detail``. Tests score detectors against
this file, so every line is flushed as it is written and counts are kept in memory as well.
"""

from __future__ import annotations

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
