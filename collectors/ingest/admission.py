"""Admission control for OTLP/HTTP: how many export bodies, and how many bytes of them, are in memory.

A request takes a slot before its body is read, and only if its declared Content-Length would fit
in the byte budget at that moment; otherwise the receiver answers 429 with Retry-After without
reading the body. Bytes are charged as they actually arrive (declared or chunked alike), and a
body that would overrun the budget is cut off with 429. So memory held by request bodies stays below
``max_bytes`` (plus one decompressed body per admitted request, itself capped by the body limit)
however many senders push at once, and a sender that announces 16 MiB and trickles a byte at a time
holds one slot, for at most the request deadline, never the byte budget.
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

    def try_enter(self, declared: int = 0) -> bool:
        """Take a slot for one request whose body of ``declared`` bytes fits now; False when there is no room.

        No bytes are taken yet: try_grow takes them as the body arrives. A request alone is admitted
        whatever its size (the body limit caps it), so one body larger than the budget is not refused forever.
        """
        with self._lock:
            over_bytes = self._requests > 0 and self._bytes + declared > self.max_bytes
            if self._requests >= self.max_requests or over_bytes:
                return False
            self._requests += 1
            return True

    def try_grow(self, extra: int) -> bool:
        """Take ``extra`` bytes for an admitted request's body as it arrives; False when they do not fit."""
        with self._lock:
            if self._requests > 1 and self._bytes + extra > self.max_bytes:
                return False
            self._bytes += extra
            return True

    def leave(self, held: int) -> None:
        """Give back the slot and the ``held`` bytes try_grow took for it."""
        with self._lock:
            self._requests -= 1
            self._bytes -= held

    def status(self) -> dict:
        """Current use, for /api/v1/health."""
        with self._lock:
            return {"in_flight": self._requests, "in_flight_bytes": self._bytes}
