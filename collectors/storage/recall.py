"""Answers to a statement already run in the same store state, handed out again for a short while.

A dashboard page asks several endpoints at once, and some of them run the same statement: Overview asks
/overview and /flow, Ordering and loss asks /report and /loss, and all four count every stream at every vantage
point (collectors/analyses/report.py ``STATEMENTS``), the costliest statement of each. The store numbers its
states (a commit or an action that changes rows starts a new one, ``Store.generation``), so rows read in one state
are still the answer while no commit came since. A ``Recall`` keeps the rows of recent statements by (state,
statement, parameters); a ``RecallingReader`` answers the statements it is told are shared from it, or runs them
and keeps their rows. Only named statements are shared, so that no caller can change rows another one reads.

Rows are kept only RECALL_S, about the time one page takes to ask everything it needs, and only for answers of
at most MAX_ROWS rows, so a live page still asks the store again on its next refresh, memory stays small, and
an idle store is not answered from memory for ever.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from collectors.storage.reader import Parameters, Reader, Result

RECALL_S = 3.0
"""How long the rows of one statement are handed out again (while the store state is unchanged): a page's requests
come one after the other, and on a busy machine its last one can start a few seconds after its first."""
MAX_ROWS = 10_000
"""Answers with more rows than this are not kept."""
MAX_ANSWERS = 64
"""Statements kept at once; the oldest is forgotten first."""


class Rows:
    """The kept rows of one statement, read like a DB-API result."""

    def __init__(self, rows: list[tuple], description: Sequence[Sequence[object]] | None):
        self._rows = rows
        self.description = description
        self._next = 0

    def fetchall(self) -> list[tuple]:
        """Every remaining row."""
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    def fetchone(self) -> tuple | None:
        """The next row, or None when there is none."""
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]


def _key(state: int, query: str, parameters: Parameters) -> tuple | None:
    values = tuple(sorted(parameters.items())) if isinstance(parameters, dict) else tuple(parameters)
    try:
        hash(values)
    except TypeError:  # a list among the parameters: not kept
        return None
    return state, query, values


class Recall:
    """Rows of recent statements by (store state, statement, parameters); shared by every reader of one store."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._answers: OrderedDict[tuple, tuple[float, list[tuple], object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Rows | None:
        """The rows kept under ``key`` if they are recent enough."""
        with self._lock:
            kept = self._answers.get(key)
            if kept is None or self._clock() - kept[0] > RECALL_S:
                return None
            return Rows(kept[1], kept[2])

    def keep(self, key: tuple, rows: list[tuple], description) -> None:
        """Keep ``rows`` under ``key`` (unless they are too many); forget old answers."""
        if len(rows) > MAX_ROWS:
            return
        now = self._clock()
        with self._lock:
            self._answers[key] = (now, rows, description)
            self._answers.move_to_end(key)
            for old in [k for k, (t, _, _) in self._answers.items() if now - t > RECALL_S or k[0] != key[0]]:
                del self._answers[old]
            while len(self._answers) > MAX_ANSWERS:
                self._answers.popitem(last=False)


class RecallingReader:
    """A ``Reader`` that answers one of the ``shared`` statements from ``recall`` when it ran in the same store
    ``state`` moments ago; every other statement goes to ``reader``."""

    def __init__(self, reader: Reader, recall: Recall, state: int, shared: frozenset[str]):
        self._reader = reader
        self._recall = recall
        self._state = state
        self._shared = shared

    def execute(self, query: str, parameters: Parameters = ()) -> Result:
        """The statement's rows."""
        key = _key(self._state, query, parameters) if query in self._shared else None
        if key is None:
            return self._reader.execute(query, parameters)
        kept = self._recall.get(key)
        if kept is not None:
            return kept
        result = self._reader.execute(query, parameters)
        rows = result.fetchall()
        self._recall.keep(key, rows, result.description)
        return Rows(rows, result.description)

    def close(self) -> None:
        """Close the reader underneath."""
        self._reader.close()
