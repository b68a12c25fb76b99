"""The traced bus: publish CloudEvents on Redis Pub/Sub and consume them, with messaging spans.

Spans follow the OpenTelemetry messaging conventions (docs/events.md): a PRODUCER span ``send
{channel}`` around PUBLISH, a CONSUMER span ``process {channel}`` per delivery, linked to the
producer's context always and parented to it by default. Facts the conventions have no name for
live under ``eventscope.*``.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

import redis
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from sample_system import envelope, telemetry

log = logging.getLogger(__name__)

MESSAGING_SYSTEM = "redis"  # a custom value: the conventions list none for Redis
ATTR_SEQUENCE = "eventscope.sequence"
ATTR_PARTITION_KEY = "eventscope.partitionkey"
ATTR_RECEIVERS = "eventscope.receivers"
ATTR_OUTCOME = "eventscope.outcome"
ATTR_ATTEMPTS = "eventscope.attempts"
RECONNECT_MAX_S = 2.0


def _event_attributes(channel: str, event: dict) -> dict:
    attributes = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.destination.name": channel,
        "messaging.message.id": event["id"],
        "cloudevents.event_id": event["id"],
        "cloudevents.event_source": event["source"],
        "cloudevents.event_type": event["type"],
        "cloudevents.event_spec_version": event["specversion"],
    }
    if "subject" in event:
        attributes["cloudevents.event_subject"] = event["subject"]
    if "sequence" in event:
        attributes[ATTR_SEQUENCE] = int(event["sequence"])
    if "partitionkey" in event:
        attributes[ATTR_PARTITION_KEY] = event["partitionkey"]
    return attributes


class Publisher:
    """Publishes one producer instance's events; numbers each stream (channel, partition key) from 1."""

    def __init__(self, client: redis.Redis, tracer: trace.Tracer, source: str):
        self._client = client
        self._tracer = tracer
        self.source = source
        self._sequences: dict[tuple[str, str | None], int] = defaultdict(int)
        self._lock = threading.Lock()

    def next_sequence(self, channel: str, partitionkey: str | None) -> int:
        with self._lock:
            self._sequences[(channel, partitionkey)] += 1
            return self._sequences[(channel, partitionkey)]

    def event(self, channel: str, type: str, data, partitionkey: str | None = None, **fields) -> dict:  # noqa: A002
        """A new event for ``channel`` carrying the next sequence number of its stream."""
        sequence = self.next_sequence(channel, partitionkey)
        return envelope.build_event(
            source=self.source, type=type, data=data, sequence=sequence, partitionkey=partitionkey, **fields
        )

    def publish(self, channel: str, event: dict) -> int:
        """PUBLISH inside a producer span; returns how many subscribers Redis delivered to."""
        with self._tracer.start_as_current_span(
            f"send {channel}", kind=SpanKind.PRODUCER, attributes=_event_attributes(channel, event)
        ) as span:
            span.set_attribute("messaging.operation.type", "send")
            span.set_attribute("messaging.operation.name", "publish")
            telemetry.inject(event)
            payload = envelope.encode(event)
            if span.is_recording():
                span.set_attribute("messaging.message.body.size", len(payload))
            receivers = self._client.publish(channel, payload)
            span.set_attribute(ATTR_RECEIVERS, receivers)
            return receivers


Handler = Callable[[str, dict, trace.Span], str | None]


class Consumer:
    """One consumer group's subscriber: runs ``handler`` per delivery inside a consumer span.

    The handler returns the outcome (``processed`` when it returns None); an exception marks the
    span failed. Reconnects by itself when Redis goes away.
    """

    def __init__(
        self,
        redis_url: str,
        tracer: trace.Tracer,
        group: str,
        channels: list[str],
        handler: Handler,
        parent_from_producer: bool = True,
    ):
        self._redis_url = redis_url
        self._tracer = tracer
        self.group = group
        self._channels = channels
        self._handler = handler
        self._parent_from_producer = parent_from_producer
        self.ready = threading.Event()
        self.processed = 0

    def run(self, stop: threading.Event) -> None:
        delay = 0.1
        while not stop.is_set():
            try:
                self._listen(stop)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                log.warning("%s lost Redis (%s); reconnecting in %.1fs", self.group, exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)

    def _listen(self, stop: threading.Event) -> None:
        client = redis.Redis.from_url(self._redis_url, socket_connect_timeout=2)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(*self._channels)
            pubsub.get_message(timeout=1.0)  # the subscribe confirmation: now messages reach us
            self.ready.set()
            while not stop.is_set():
                message = pubsub.get_message(timeout=0.2)
                if message and message["type"] == "message":
                    self.deliver(message["channel"].decode(), message["data"])
        finally:
            self.ready.clear()
            pubsub.close()
            client.close()

    def deliver(self, channel: str, payload: bytes) -> None:
        """Process one delivery inside its consumer span."""
        try:
            event = envelope.decode(payload)
        except envelope.InvalidEnvelope as exc:
            log.warning("%s: invalid event on %s: %s", self.group, channel, exc)
            return
        producer = telemetry.extract(event)
        producer_span = trace.get_current_span(producer).get_span_context()
        links = [Link(producer_span)] if producer_span.is_valid else []
        with self._tracer.start_as_current_span(
            f"process {channel}",
            context=producer if self._parent_from_producer else Context(),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=_event_attributes(channel, event),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            span.set_attribute("messaging.operation.type", "process")
            span.set_attribute("messaging.consumer.group.name", self.group)
            try:
                outcome = self._handler(channel, event, span) or "processed"
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                outcome = "failed"
            span.set_attribute(ATTR_OUTCOME, outcome)
            self.processed += 1
