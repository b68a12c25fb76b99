"""Keep the collectors' background parts running: a part whose thread stops, on any exception or by
returning early, is started again after a backoff, and /api/v1/health says so meanwhile.

A part reconnects to Redis by itself (collectors/backoff.py ``keep_connected``); the supervisor is for
everything else: a bug, a payload nobody foresaw, a store that refused a write in a way the part did
not expect. Without it one such exception would end the thread for good, silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from collectors.backoff import Backoff

log = logging.getLogger(__name__)

HEALTHY_AFTER_S = 30.0  # a part that ran this long before it stopped restarts after the shortest delay
RUNNING = "running"
RESTARTING = "restarting"
STOPPED = "stopped"


class Part:
    """One supervised thread: its state, how often it was restarted and why last."""

    def __init__(self, name: str, run: Callable[[threading.Event], None]):
        self.name = name
        self.run = run
        self.state = RUNNING
        self.restarts = 0
        self.last_error: str | None = None
        self.thread: threading.Thread | None = None

    def status(self) -> dict:
        return {"state": self.state, "restarts": self.restarts, "last_error": self.last_error}

    def problem(self) -> str | None:
        if self.state != RESTARTING:
            return None
        return f"{self.name} stopped ({self.last_error}); restarting"


class Supervisor:
    """Runs each part in a thread of its own until ``stop`` is set."""

    def __init__(self, stop: threading.Event):
        self._stop = stop
        self.parts: dict[str, Part] = {}

    def start(self, name: str, run: Callable[[threading.Event], None]) -> Part:
        """Start ``run(stop)`` as the part ``name``; it is restarted whenever it ends before ``stop``."""
        part = Part(name, run)
        self.parts[name] = part
        part.thread = threading.Thread(target=self._keep_running, args=(part,), name=name, daemon=True)
        part.thread.start()
        return part

    def problems(self) -> list[str]:
        """Why any part is not running now."""
        return [problem for part in self.parts.values() if (problem := part.problem())]

    def join(self, timeout: float) -> None:
        """Wait for the parts to end (after ``stop`` was set), at most ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        for part in self.parts.values():
            if part.thread is not None:
                part.thread.join(max(0.0, deadline - time.monotonic()))

    def _keep_running(self, part: Part) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            started = time.monotonic()
            part.state = RUNNING
            try:
                part.run(self._stop)
            except Exception as exc:
                part.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                log.exception("%s stopped", part.name)
            else:
                if self._stop.is_set():
                    break
                part.last_error = "returned before the collectors stopped"
                log.error("%s returned before the collectors stopped", part.name)
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                backoff.reset()
            part.state = RESTARTING
            part.restarts += 1
            self._stop.wait(backoff.next())
        part.state = STOPPED
