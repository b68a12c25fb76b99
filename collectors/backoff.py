"""Waiting before trying again: one backoff, used by the supervisor to restart a part that stopped and by
every part that holds a Redis connection (the bus tap, the broker poller) to reconnect.

A Redis that goes away and comes back is expected, not a bug: ``keep_connected`` retries it quietly
(one warning line, no traceback) and keeps the state /api/v1/health reports. Anything else a part
raises is left to the supervisor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

FIRST_S = 0.1
MOST_S = 2.0
# What a lost, refused or refusing Redis raises: the part reconnects. A RedisError that is not a
# connection error (e.g. CONFIG disabled for the poller) is retried the same way, and said in health.
REDIS_ERRORS = (redis.RedisError, OSError)

CONNECTING = "connecting"
CONNECTED = "connected"
RECONNECTING = "reconnecting"


class Backoff:
    """Delays that double from ``first_s`` up to ``most_s``; ``reset`` starts again from the first."""

    def __init__(self, first_s: float = FIRST_S, most_s: float = MOST_S):
        self._first_s = first_s
        self._most_s = most_s
        self._next_s = first_s

    def next(self) -> float:
        """The delay to wait now; the one after it is twice as long, at most ``most_s``."""
        delay = self._next_s
        self._next_s = min(delay * 2, self._most_s)
        return delay

    def reset(self) -> None:
        self._next_s = self._first_s


class RedisLink:
    """One part's Redis connection as /api/v1/health shows it: connecting (the first attempt), connected,
    or reconnecting after a loss or a refused attempt."""

    def __init__(self, what: str):
        self.what = what
        self.state = CONNECTING
        self.reconnects = 0
        self.last_error: str | None = None
        self.backoff = Backoff()

    @property
    def connected(self) -> bool:
        return self.state == CONNECTED

    def up(self) -> None:
        """The connection works: later losses start from the shortest delay again."""
        self.state = CONNECTED
        self.backoff.reset()

    def down(self) -> None:
        """The session ended without an error (stopping, or the supervisor restarting the part)."""
        if self.state == CONNECTED:
            self.state = CONNECTING

    def lost(self, exc: BaseException) -> float:
        """Record a lost or refused connection; the delay before the next attempt."""
        self.state = RECONNECTING
        self.reconnects += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        return self.backoff.next()

    def problem(self) -> str | None:
        """Why the part cannot reach Redis now, or None (also while its first attempt is under way)."""
        if self.state != RECONNECTING:
            return None
        return f"{self.what} cannot reach Redis, reconnecting ({self.last_error})"


def keep_connected(stop: threading.Event, link: RedisLink, session: Callable[[threading.Event], None]) -> None:
    """Run ``session(stop)`` until ``stop`` is set, again after each Redis error, with backoff.

    The session calls ``link.up()`` once its connection works. Other exceptions propagate (to the
    supervisor, which restarts the part).
    """
    while not stop.is_set():
        try:
            session(stop)
        except REDIS_ERRORS as exc:
            delay = link.lost(exc)
            log.warning("%s lost Redis (%s); reconnecting in %.1fs", link.what, exc, delay)
            stop.wait(delay)
        except BaseException:
            link.down()
            raise
        else:
            link.down()
