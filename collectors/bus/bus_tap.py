"""The bus tap: PSUBSCRIBE to the configured patterns and record every message Redis delivers.

On a Redis Cluster it also follows every shard's sharded channels (collectors/bus/cluster_tap.py).

Each message becomes one row whether or not it is a valid CloudEvent: a payload without an envelope
is kept as an unenveloped message, one that claims to be a CloudEvent and is not, with the reason
(malformed). Nothing a payload holds ends the tap: what cannot be parsed, or cannot be stored as
parsed, is kept as malformed with the reason (collectors/bus/tap_writer.py checks every commit). The tap
reconnects by itself when Redis goes away; what was published meanwhile never reaches it, and that
loss shows up as gaps, which is the truth.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence

import redis

from collectors.backoff import RedisLink, keep_connected
from collectors.bus.cloudevents import EVENT, MALFORMED, UNENVELOPED, MalformedEvent, Unenveloped, parse_event
from collectors.bus.cluster_tap import DATA_MESSAGES, ClusterFeeds
from collectors.bus.tap_writer import MAX_REASON, Submit, TapWriter

MAX_PAYLOAD_KEPT = 64 * 1024
FLUSH_INTERVAL_S = 0.1
FLUSH_ROWS = 1000
CLIENT_NAME = "eventscope-bus-tap"


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
    except Exception as exc:  # nothing a payload holds may end the tap: keep it, say why
        return head + (f"cannot be read: {type(exc).__name__}: {exc}"[:MAX_REASON],) + (None,) * 8 + (kept, MALFORMED)
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
    """Runs in its own thread (supervised); hands batches of rows to a TapWriter, which checks their commits."""

    def __init__(
        self,
        redis_url: str,
        patterns: Sequence[str],
        submit: Submit,
        *,
        cluster: bool = False,
        shard_channels: Sequence[str] = (),
    ):
        self._redis_url = redis_url
        self._patterns = list(patterns)
        self._cluster = cluster
        self._shard_channels = list(shard_channels)
        self._feeds: ClusterFeeds | None = None
        self._counter = itertools.count(1)
        self.link = RedisLink("bus tap")
        self.writer = TapWriter(submit)
        self.received = 0

    def status(self) -> dict:
        """The tap's state and counts, for /api/v1/health."""
        return {
            "connected": self.link.connected,
            "state": self.link.state,
            "patterns": self._patterns,
            "received": self.received,
            **self.writer.status(),
            "reconnects": self.link.reconnects,
            "last_error": self.link.last_error,
            "cluster": self._feeds.status() if self._feeds is not None else None,
        }

    def problems(self) -> list[str]:
        """Why the tap is not seeing or not storing everything now."""
        return [problem for problem in (self.link.problem(), self.writer.problem()) if problem]

    def run(self, stop: threading.Event) -> None:
        """Listen until ``stop`` is set, reconnecting with backoff when Redis goes away."""
        keep_connected(stop, self.link, self._listen)

    def _listen(self, stop: threading.Event) -> None:
        if self._cluster:
            self._listen_cluster(stop)
            return
        client = redis.Redis.from_url(self._redis_url, socket_connect_timeout=2, client_name=CLIENT_NAME)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.psubscribe(*self._patterns)
            self.link.up()
            self._pump(stop, lambda timeout: pubsub.get_message(timeout=timeout))
        finally:
            pubsub.close()
            client.close()

    def _listen_cluster(self, stop: threading.Event) -> None:
        feeds = ClusterFeeds(self._redis_url, self._patterns, self._shard_channels, self.link, CLIENT_NAME)
        self._feeds = feeds
        try:
            feeds.reconcile()
            self._pump(stop, feeds.next_message)
        finally:
            feeds.close()

    def _pump(self, stop: threading.Event, next_message: Callable[[float], dict | None]) -> None:
        """Turn messages into rows and hand them over in batches, until ``stop`` (or a Redis error)."""
        pending: list[tuple] = []
        try:
            flushed_at = time.monotonic()
            while not stop.is_set():
                message = next_message(FLUSH_INTERVAL_S)
                if message and message["type"] in DATA_MESSAGES:
                    pending.append(self._row(message))
                if pending and (len(pending) >= FLUSH_ROWS or time.monotonic() - flushed_at >= FLUSH_INTERVAL_S):
                    self.writer.write(pending)
                    pending, flushed_at = [], time.monotonic()
                else:
                    self.writer.settle()
        finally:
            if pending:
                self.writer.write(pending)
            self.writer.settle(wait_all=True)

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
