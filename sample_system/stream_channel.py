"""A channel read from a Redis Stream with a consumer group: delivery that waits for a consumer that is down.

Pub/Sub delivers at most once: what is published while a subscriber is away is lost to it. For the
groups named to read from streams, every publish on their channels is also appended (the same wire
CloudEvent, ``traceparent`` included) to the stream ``{sample}:stream:{channel}``. The group reads it with
XREADGROUP and acknowledges each entry with XACK once handled, so entries appended while it was down
are delivered when it comes back, and one it read but did not acknowledge is read again (its pending
entries, first) after a restart. Each delivery is a CONSUMER span like a Pub/Sub delivery's, parented
by and linked to the producer span.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable

import redis
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from eventscope_redis import attributes, propagation, wire
from sample_system.bus import Handler, client_name
from sample_system.faults import FaultInjector

log = logging.getLogger(__name__)

STREAM_PREFIX = "{sample}:stream:"
FIELD = "event"
READ_COUNT = 20
BLOCK_MS = 100
DOWN_POLL_S = 0.05
CONSUMER = "c1"  # one consumer per group here; more would share the group's entries


def stream_key(channel: str) -> str:
    return STREAM_PREFIX + channel


def tee(client: redis.Redis, channels: frozenset[str]) -> Callable:
    """A producer step: a publish on one of ``channels`` is also appended to that channel's stream."""

    def step(outgoing, proceed):
        if outgoing.channel not in channels or outgoing.transport is None:
            return proceed(outgoing)
        publish = outgoing.transport

        def both(data: bytes):
            client.xadd(stream_key(outgoing.channel), {FIELD: data})
            return publish(data)

        return proceed(dataclasses.replace(outgoing, transport=both))

    return step


class StreamConsumer:
    """One consumer group reading its channels' streams; ``run`` until ``stop`` (as ``bus.Consumer``)."""

    def __init__(
        self,
        redis_url: str,
        provider: trace.TracerProvider,
        group: str,
        channels: list[str],
        handler: Handler,
        faults: FaultInjector | None = None,
    ):
        self.group = group
        self.channels = list(channels)
        self._client = redis.Redis.from_url(redis_url, client_name=client_name(f"{group}-stream"))
        self._tracer = provider.get_tracer(__name__)
        self._handler = handler
        self._faults = faults
        self.ready = threading.Event()
        self.processed = 0
        self.outcomes: dict[str, int] = {}

    def _create_group(self) -> None:
        for channel in self.channels:
            try:
                self._client.xgroup_create(stream_key(channel), self.group, id="$", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _down(self) -> bool:
        return self._faults is not None and self._faults.crash_due(self.group)

    def run(self, stop: threading.Event) -> None:
        self._create_group()
        self.ready.set()
        pending = True  # after a start, first what this consumer read and never acknowledged
        while not stop.is_set():
            if self._down():
                stop.wait(DOWN_POLL_S)
                pending = True
                continue
            try:
                pending = self._read(pending)
            except redis.RedisError as exc:
                log.warning("stream consumer %s: %s", self.group, exc)
                stop.wait(0.5)
        self._client.close()

    def _read(self, pending: bool) -> bool:
        streams = {stream_key(c): "0" if pending else ">" for c in self.channels}
        replies = self._client.xreadgroup(self.group, CONSUMER, streams, count=READ_COUNT, block=BLOCK_MS)
        got = False
        for key, entries in replies or []:
            channel = (key.decode() if isinstance(key, bytes) else key)[len(STREAM_PREFIX) :]
            for entry_id, fields in entries:
                got = True
                self._deliver(channel, fields.get(FIELD.encode()) or b"")
                self._client.xack(key, self.group, entry_id)
        return pending and got

    def _deliver(self, channel: str, data: bytes) -> None:
        received = wire.unwrap(data)
        event = dict(received.attributes or {})
        producer = propagation.extract_span(event)
        links = [Link(producer)] if producer.is_valid else []
        span = self._tracer.start_span(
            f"process {channel}",
            context=propagation.extract(event),
            kind=SpanKind.CONSUMER,
            attributes=attributes.consumer(channel, self.group, event, len(received.payload or b""), None),
            links=links,
        )
        with trace.use_span(span, end_on_exit=True):
            delay = self._faults.slow_delay_s(self.group, channel) if self._faults is not None else 0.0
            if delay:
                time.sleep(delay)
            try:
                outcome = self._handler(channel, {**event, "data": json.loads(received.payload)}, span) or "processed"
            except Exception as exc:  # noqa: BLE001 - one bad entry is recorded and acknowledged, never a stall
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                span.set_attribute(attributes.OUTCOME, attributes.FAILED)
                outcome = attributes.FAILED
        self.processed += 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
