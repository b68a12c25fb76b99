"""The bus tap's rows into the store: every batch is committed, or its failure is seen and counted.

The tap hands batches to the store's writer without waiting for each commit (a few may be in flight),
then checks each one's outcome in order. A batch the store refused is split in halves and tried again
until the rows it cannot hold stand alone; such a row is stored as malformed (its text made storable,
the reason saying why), so one bad message never takes its neighbours with it. A row that cannot be
stored even so is counted, and /api/v1/health reports it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from collectors.bus.cloudevents import MALFORMED
from collectors.storage.schema import BUS_COLUMNS

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 8  # batches submitted and not yet checked; beyond this the tap waits for the oldest
COMMIT_TIMEOUT_S = 120.0
MAX_REASON = 500
_PAYLOAD_AT = BUS_COLUMNS.index("Payload")


class Commit(Protocol):
    """What the store's submit returns (store.Job): ``wait`` is True once committed, raises if it failed."""

    def wait(self, timeout: float | None = None) -> bool: ...


Submit = Callable[[list[tuple]], "Commit | None"]
"""Queue rows for a commit; None when the collectors stop before the store took them."""


class CommitTimeout(RuntimeError):
    """The commit did not finish in time; it may still happen, so the rows are not tried again."""


def storable(text: str) -> str:
    """``text`` with whatever UTF-8 cannot encode (lone surrogates) replaced by ``?``."""
    return text.encode("utf-8", "replace").decode("utf-8")


def storable_malformed(row: tuple, reason: str) -> tuple:
    """The bus_messages row kept for a message the store could not hold as it was: malformed, with the
    reason, its arrival, channel, size and payload text made storable, and nothing parsed from it."""
    arrival_ns, arrival_seq, channel, pattern, size = row[:5]
    return (
        arrival_ns,
        arrival_seq,
        storable(str(channel)),
        storable(str(pattern)),
        size,
        False,
        storable(reason)[:MAX_REASON],
        *(None,) * 8,
        storable(str(row[_PAYLOAD_AT])),
        MALFORMED,
    )


def _outcome(commit: Commit, block: bool) -> tuple[bool, BaseException | None]:
    """(finished, the error if it failed) without raising; waits up to COMMIT_TIMEOUT_S when ``block``."""
    try:
        if commit.wait(COMMIT_TIMEOUT_S if block else 0):
            return True, None
    except Exception as exc:
        return True, exc
    return (True, CommitTimeout(f"commit did not finish in {COMMIT_TIMEOUT_S:.0f} s")) if block else (False, None)


class TapWriter:
    """Submits the tap's batches and settles each: committed, split and retried, or counted as lost."""

    def __init__(self, submit: Submit):
        self._submit = submit
        self._in_flight: deque[tuple[Commit | None, list[tuple]]] = deque()
        self._in_flight_rows = 0  # kept apart: health reads it from another thread while the deque changes
        self.recorded = 0
        self.stored_as_malformed = 0
        self.unstored = 0
        self.last_error: str | None = None

    def status(self) -> dict:
        """Counts for /api/v1/health."""
        return {
            "recorded": self.recorded,
            "stored_as_malformed": self.stored_as_malformed,
            "unstored": self.unstored,
            "pending": self._in_flight_rows,
            "store_error": self.last_error,
        }

    def problem(self) -> str | None:
        if not self.unstored:
            return None
        return f"{self.unstored} bus message(s) could not be stored ({self.last_error})"

    def write(self, rows: list[tuple]) -> None:
        """Submit one batch, then settle the batches whose commits finished."""
        self._in_flight.append((self._submit(rows), rows))
        self._in_flight_rows += len(rows)
        self.settle()

    def settle(self, wait_all: bool = False) -> None:
        """Check finished commits in order; wait for the oldest while too many are in flight (or all)."""
        while self._in_flight:
            commit, rows = self._in_flight[0]
            block = wait_all or len(self._in_flight) > MAX_IN_FLIGHT
            finished, error = _outcome(commit, block) if commit is not None else (True, None)
            if not finished:
                return
            self._in_flight.popleft()
            self._settled(commit, rows, error)
            self._in_flight_rows -= len(rows)

    def _settled(self, commit: Commit | None, rows: list[tuple], error: BaseException | None) -> None:
        if commit is None:
            self._lost(rows, "the collectors stopped with the write queue full")
        elif error is None:
            self.recorded += len(rows)
        elif isinstance(error, CommitTimeout):
            self._lost(rows, str(error))
        elif len(rows) == 1:
            self._refused(rows[0], error)
        else:
            middle = len(rows) // 2
            for half in (rows[:middle], rows[middle:]):
                self._commit_now(half)

    def _commit_now(self, rows: list[tuple]) -> None:
        commit = self._submit(rows)
        self._settled(commit, rows, _outcome(commit, block=True)[1] if commit is not None else None)

    def _refused(self, row: tuple, error: BaseException) -> None:
        reason = f"the store cannot hold this message ({type(error).__name__}: {error})"
        log.warning("bus message %s on %r kept as malformed: %s", row[1], storable(str(row[2])), storable(reason))
        commit = self._submit([storable_malformed(row, reason)])
        _, again = _outcome(commit, block=True) if commit is not None else (True, None)
        if commit is not None and again is None:
            self.recorded += 1
            self.stored_as_malformed += 1
        else:
            self._lost([row], f"{type(again).__name__}: {again}" if again else "the collectors stopped")

    def _lost(self, rows: list[tuple], reason: str) -> None:
        self.unstored += len(rows)
        self.last_error = storable(reason)[:MAX_REASON]
        log.error("%d bus message(s) could not be stored: %s", len(rows), self.last_error)
