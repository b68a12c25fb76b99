"""The bus tap: PSUBSCRIBE to the configured patterns and record every message Redis delivers.

Each message becomes one row whether or not it is a valid CloudEvent: a payload without an envelope
is kept as an unenveloped message, one that claims to be a CloudEvent and is not, with the reason
(malformed). The tap reconnects by itself when Redis goes away; what was
published meanwhile never reaches it, and that loss shows up as gaps, which is the truth.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence

import redis

from collectors.cloudevents import EVENT, MALFORMED, UNENVELOPED, MalformedEvent, Unenveloped, parse_event

log = logging.getLogger(__name__)

MAX_PAYLOAD_KEPT = 64 * 1024
FLUSH_INTERVAL_S = 0.1
FLUSH_ROWS = 1000
RECONNECT_MAX_S = 2.0


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def tap_row(arrival_ns: int, arrival_seq: int, channel: str, pattern: str, payload: bytes) -> tuple:
    """One bus_messages row for a payload as received (see store.BUS_COLUMNS)."""
    kept = _text(payload[:MAX_PAYLOAD_KEPT])
    head = (arrival_ns, arrival_seq, channel, pattern, len(payload), False)
    try:
        event = parse_event(payload)
    except Unenveloped:
        return head + (None,) * 9 + (kept, UNENVELOPED)
    except MalformedEvent as exc:
        return head + (str(exc),) + (None,) * 8 + (kept, MALFORMED)
    return (
        arrival_ns,
        arrival_seq,
        channel,
        pattern,
        len(payload),
        True,
        None,
        event.id,
        event.source,
        event.type,
        event.subject,
        event.time,
        event.sequence,
        event.partitionkey,
        event.trace_id,
        kept,
        EVENT,
    )


class BusTap:
    """Runs in its own thread; hands batches of rows to ``sink``, which may block (backpressure)."""

    def __init__(self, redis_url: str, patterns: Sequence[str], sink: Callable[[list[tuple]], None]):
        self._redis_url = redis_url
        self._patterns = list(patterns)
        self._sink = sink
        self._counter = itertools.count(1)
        self.connected = False
        self.received = 0
        self.reconnects = 0
        self.last_error: str | None = None

    def status(self) -> dict:
        return {
            "connected": self.connected,
            "patterns": self._patterns,
            "received": self.received,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }

    def run(self, stop: threading.Event) -> None:
        delay = 0.1
        while not stop.is_set():
            try:
                self._listen(stop)
                delay = 0.1
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self.connected = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("bus tap lost Redis (%s); reconnecting in %.1fs", exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                self.reconnects += 1

    def _listen(self, stop: threading.Event) -> None:
        client = redis.Redis.from_url(self._redis_url, socket_connect_timeout=2)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pending: list[tuple] = []
        try:
            pubsub.psubscribe(*self._patterns)
            self.connected = True
            flushed_at = time.monotonic()
            while not stop.is_set():
                message = pubsub.get_message(timeout=FLUSH_INTERVAL_S)
                if message and message["type"] in ("pmessage", "message"):
                    pending.append(self._row(message))
                if pending and (len(pending) >= FLUSH_ROWS or time.monotonic() - flushed_at >= FLUSH_INTERVAL_S):
                    self._sink(pending)
                    pending, flushed_at = [], time.monotonic()
        finally:
            self.connected = False
            if pending:
                self._sink(pending)
            pubsub.close()
            client.close()

    def _row(self, message: dict) -> tuple:
        self.received += 1
        data = message["data"]
        payload = data if isinstance(data, bytes) else str(data).encode()
        return tap_row(
            time.time_ns(),
            next(self._counter),
            _text(message["channel"]),
            _text(message.get("pattern") or ""),
            payload,
        )
