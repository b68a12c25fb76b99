"""Requests the collectors turned away, counted per reason and logged, so that a refused sender is never silent.

A sender that gets 4xx/5xx may not log it (the Node.js exporter did not), so the collectors say it
themselves: ``/api/v1/health`` carries the count per reason, and the log carries one line per reason
at most every ``LOG_EVERY_S`` seconds, with how many were refused since the last line and the
address of the latest client. Rate-limiting keeps a hostile sender from filling the log.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0
_PARTIAL = "(partial success)"  # rate-limit key of rejected items, apart from the reasons

# reason -> what it means (docs/ingest.md lists the same)
REASONS = {
    "unauthorized": "no or wrong bearer token (401)",
    "not_found": "no such endpoint (404)",
    "method_not_allowed": "another method than POST for OTLP, GET for the API (405)",
    "bad_http": "the request is not valid HTTP/1.1, e.g. two different Content-Length headers (400)",
    "undecodable": "the body is not a valid OTLP request: protobuf, JSON or gzip (400)",
    "body_too_large": "the body, or its decompressed form, exceeds the body limit (413)",
    "unsupported_media": "another content type or content encoding (415)",
    "timeout": "the body did not arrive whole within the request deadline (408)",
    "incomplete_body": "the client left before sending the whole body",
    "too_many_in_flight": "more exports in flight than the limits allow (429)",
    "store_unavailable": "the write queue is full, or the commit failed or took too long (503)",
}


class Refusals:
    """Counts per reason, and a rate-limited log line per reason; thread-safe."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._unlogged: dict[str, int] = {}
        self._logged_at: dict[str, float] = {}
        self.rejected_items = 0

    def refuse(self, reason: str, client: str, detail: str = "") -> None:
        """Count one refused request and log it unless this reason was logged less than LOG_EVERY_S ago."""
        if reason not in REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")  # every reason is documented in REASONS
        now = self._clock()
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1
            pending = self._unlogged.get(reason, 0) + 1
            due = now - self._logged_at.get(reason, -LOG_EVERY_S) >= LOG_EVERY_S
            self._unlogged[reason] = 0 if due else pending
            if due:
                self._logged_at[reason] = now
        if due:
            suffix = f": {detail[:200]}" if detail else ""
            log.warning("refused %d request(s) (%s), latest from %s%s", pending, reason, client, suffix)

    def reject_items(self, count: int, client: str, detail: str) -> None:
        """Count items rejected by partial success (the request itself was answered 200), logged rate-limited."""
        now = self._clock()
        with self._lock:
            self.rejected_items += count
            due = now - self._logged_at.get(_PARTIAL, -LOG_EVERY_S) >= LOG_EVERY_S
            if due:
                self._logged_at[_PARTIAL] = now
        if due:
            log.warning("rejected %d item(s) of an export from %s: %s", count, client, detail[:200])

    def status(self) -> dict:
        """``refused`` (total), ``refused_by_reason`` and ``rejected_items``, for /api/v1/health."""
        with self._lock:
            counts = dict(self._counts)
            return {
                "refused": sum(counts.values()),
                "refused_by_reason": counts,
                "rejected_items": self.rejected_items,
            }
