"""Admission control for OTLP/HTTP: how many export bodies, and how many bytes of them, are in memory.

A request is admitted before its body is read, on its declared Content-Length; when either budget
is spent the receiver answers 429 with Retry-After without reading the body, so memory held by
requests stays below ``max_bytes`` (plus one decompressed body per admitted request, itself capped
by the body limit) however many senders push at once.
"""

from __future__ import annotations

import threading


class Admission:
    """A counting budget of requests and bytes; never blocks."""

    def __init__(self, max_requests: int, max_bytes: int):
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._requests = 0
        self._bytes = 0

    def try_enter(self, size: int) -> bool:
        """Take room for one request of ``size`` bytes; False when there is none."""
        with self._lock:
            over_bytes = self._requests > 0 and self._bytes + size > self.max_bytes
            if self._requests >= self.max_requests or over_bytes:
                return False
            self._requests += 1
            self._bytes += size
            return True

    def try_grow(self, extra: int) -> bool:
        """Take ``extra`` more bytes for an admitted request whose body arrives without a declared size."""
        with self._lock:
            if self._requests > 1 and self._bytes + extra > self.max_bytes:
                return False
            self._bytes += extra
            return True

    def leave(self, size: int) -> None:
        """Give back what try_enter took."""
        with self._lock:
            self._requests -= 1
            self._bytes -= size

    def status(self) -> dict:
        """Current use, for /api/v1/health."""
        with self._lock:
            return {"in_flight": self._requests, "in_flight_bytes": self._bytes}
