"""The traced bus: publish CloudEvents on Redis Pub/Sub and consume them, with messaging spans.

Spans follow the OpenTelemetry messaging conventions (docs/events.md): a PRODUCER span ``send
{channel}`` around PUBLISH, a CONSUMER span ``process {channel}`` per delivery, linked to the
producer's context always and parented to it by default. Facts the conventions have no name for
live under ``eventscope.*``.

Every consumer group applies the shop's practices to each delivery, in this order: the idempotency
guard (skip a copy), schema validation (dead-letter an invalid event), upcasting to the newest
schema version, then the handler with retries (exponential backoff and jitter, one ``retry`` span
event per failed attempt) and, after the last attempt, the dead-letter queue. Faults are injected
here too, through one FaultInjector, which records the ground truth.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable

import redis
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from sample_system import envelope, telemetry
from sample_system.deadletters import DeadLetterQueue
from sample_system.dedupe import IdempotencyGuard
from sample_system.faults import FaultInjector
from sample_system.registry import SchemaError, SchemaRegistry, version_of
from sample_system.retry import RetryPolicy

log = logging.getLogger(__name__)

MESSAGING_SYSTEM = "redis"  # a custom value: the conventions list none for Redis
ATTR_SEQUENCE = "eventscope.sequence"
ATTR_PARTITION_KEY = "eventscope.partitionkey"
ATTR_RECEIVERS = "eventscope.receivers"
ATTR_OUTCOME = "eventscope.outcome"
ATTR_ATTEMPTS = "eventscope.attempts"
ATTR_SCHEMA_VERSION = "eventscope.schema.version"
ATTR_DEAD_LETTER_REASON = "eventscope.dead_letter.reason"
ATTR_DEAD_LETTER_QUEUE = "eventscope.dead_letter.queue"
ATTR_DEDUPE_KEY = "eventscope.dedupe.key"
RETRY_EVENT = "retry"
ATTR_RETRY_ATTEMPT = "eventscope.attempt"
ATTR_RETRY_DELAY_MS = "eventscope.retry.delay_ms"
RECONNECT_MAX_S = 2.0
POLL_S = 0.2  # how long a subscriber waits for a message before looking at its faults again
DRAIN_TIMEOUT_S = 5.0
BATCH_MAX = 64  # messages already waiting are taken together: one round trip claims them all
_UNCLAIMED = object()
CLIENT_NAME_PREFIX = "sample-"  # every Redis connection of the sample system is named (CLIENT SETNAME)


def subscriber_name(group: str) -> str:
    """The Redis client name of a consumer group's subscriber, as CLIENT LIST shows it."""
    return client_name(group)


def publisher_name(service: str) -> str:
    """The Redis client name of a service's publishing connection."""
    return client_name(f"{service}-publisher")


def client_name(role: str) -> str:
    """``sample-ROLE``, each character Redis refuses in a name (outside ``!``..``~``: spaces too) made a dash."""
    return CLIENT_NAME_PREFIX + "".join(c if "!" <= c <= "~" else "-" for c in role)


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
    version = version_of(event)
    if version is not None:
        attributes[ATTR_SCHEMA_VERSION] = version
    return attributes


def poisoned(data: object) -> dict:
    """Data its schema rejects whatever the type: every field present but null."""
    fields = data if isinstance(data, dict) else {"value": data}
    return {key: None for key in fields}


PARTITIONS = 4
"""Shards per channel: few and long streams, so that a lost event leaves a gap to see."""


def partition_of(key: str, partitions: int = PARTITIONS) -> str:
    """A shard of the channel, stable for an entity: crc32(key) mod partitions."""
    return f"p{zlib.crc32(key.encode()) % partitions}"


class Publisher:
    """Publishes one producer instance's events; numbers each stream (channel, partition key) from 1.

    With a registry every event is validated before PUBLISH (a SchemaError is the caller's bug);
    with a FaultInjector, producer faults (drop, skew, poison, reorder, duplicate) happen here.
    """

    def __init__(
        self,
        client: redis.Redis,
        tracer: trace.Tracer,
        source: str,
        *,
        registry: SchemaRegistry | None = None,
        faults: FaultInjector | None = None,
        metrics: telemetry.MessagingMetrics | None = None,
    ):
        self._client = client
        self._tracer = tracer
        self.source = source
        self._registry = registry
        self._faults = faults
        self._metrics = metrics
        self._sequences: dict[tuple[str, str | None], int] = defaultdict(int)
        self._lock = threading.Lock()
        self.published = 0

    def next_sequence(self, channel: str, partitionkey: str | None) -> int:
        with self._lock:
            self._sequences[(channel, partitionkey)] += 1
            return self._sequences[(channel, partitionkey)]

    def entity_event(self, channel: str, type: str, data, entity_id: str, dataschema: str) -> dict:  # noqa: A002
        """An event about one entity: its id is the subject, and its shard of the channel the partition key."""
        return self.event(
            channel, type, data, partitionkey=partition_of(entity_id), subject=entity_id, dataschema=dataschema
        )

    def event(self, channel: str, type: str, data, partitionkey: str | None = None, **fields) -> dict:  # noqa: A002
        """A new event for ``channel`` carrying the next sequence number of its stream."""
        sequence = self.next_sequence(channel, partitionkey)
        return envelope.build_event(
            source=self.source, type=type, data=data, sequence=sequence, partitionkey=partitionkey, **fields
        )

    def publish(self, channel: str, event: dict) -> int:
        """Validate, apply producer faults, PUBLISH in a producer span; returns the receivers Redis counted."""
        faults = self._faults
        if faults is not None and faults.drop(channel, event):
            return 0
        skew_ns = int((faults.skew_ms(channel, event) if faults else 0.0) * 1_000_000)
        if skew_ns:
            event["time"] = envelope.rfc3339_now(skew_ns / 1e9)
        if faults is not None and faults.poison(channel, event):
            event["data"] = poisoned(event.get("data"))
        elif self._registry is not None:
            self._registry.validate(event)
        if faults is None:
            return self._send(channel, event, skew_ns)
        receivers = 0
        for item, ctx in faults.reorder(channel, event):
            receivers += self._send_in(ctx, channel, item, skew_ns if item is event else 0)
            if item is event and faults.duplicate(channel, event):
                self._send(channel, event, skew_ns)
        return receivers

    def publish_held(self) -> int:
        """Publish every event a reorder fault still holds (at shutdown, so none is silently lost)."""
        if self._faults is None:
            return 0
        released = self._faults.release_held()
        for channel, event, ctx in released:
            self._send_in(ctx, channel, event, 0)
        return len(released)

    def _send_in(self, ctx, channel: str, event: dict, skew_ns: int) -> int:
        token = otel_context.attach(ctx) if ctx is not None else None
        try:
            return self._send(channel, event, skew_ns)
        finally:
            if token is not None:
                otel_context.detach(token)

    def _send(self, channel: str, event: dict, skew_ns: int = 0) -> int:
        attributes = _event_attributes(channel, event)
        attributes["messaging.operation.type"] = "send"
        attributes["messaging.operation.name"] = "publish"
        span = self._tracer.start_span(
            f"send {channel}",
            kind=SpanKind.PRODUCER,
            attributes=attributes,
            start_time=time.time_ns() + skew_ns if skew_ns else None,
        )
        try:
            with trace.use_span(span, end_on_exit=False):
                telemetry.inject(event)
                payload = envelope.encode(event)
                if span.is_recording():
                    span.set_attribute("messaging.message.body.size", len(payload))
                if self._faults is not None:
                    receivers = self._faults.publishing(channel, event, lambda: self._client.publish(channel, payload))
                else:
                    receivers = self._client.publish(channel, payload)
                span.set_attribute(ATTR_RECEIVERS, receivers)
        finally:
            span.end(end_time=time.time_ns() + skew_ns if skew_ns else None)
        self.published += 1
        if self._metrics is not None:
            self._metrics.sent(channel)
        return receivers


Handler = Callable[[str, dict, trace.Span], str | None]


@dataclasses.dataclass
class Practices:
    """What every consumer group applies to a delivery (see the module docstring)."""

    client: redis.Redis
    registry: SchemaRegistry
    dead_letters: DeadLetterQueue
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    dedupe_window_s: int = 600
    faults: FaultInjector | None = None
    metrics: telemetry.MessagingMetrics | None = None
    seed: int = 1


class _Crashed(Exception):
    """The consumer_crash fault took this subscriber down."""


class Consumer:
    """One consumer group's subscriber: runs ``handler`` per delivery inside a consumer span.

    The handler returns the outcome (``processed`` when it returns None). Without practices an
    exception marks the span failed; with them, see the module docstring. Reconnects by itself
    when Redis goes away.
    """

    def __init__(
        self,
        redis_url: str,
        tracer: trace.Tracer,
        group: str,
        channels: list[str],
        handler: Handler,
        parent_from_producer: bool = True,
        practices: Practices | None = None,
    ):
        self._redis_url = redis_url
        self._tracer = tracer
        self.group = group
        self._channels = list(channels)
        self._handler = handler
        self._parent_from_producer = parent_from_producer
        self._practices = practices
        self._faults = practices.faults if practices else None
        self._guard = IdempotencyGuard(practices.client, group, practices.dedupe_window_s) if practices else None
        self._rng = random.Random(f"{practices.seed if practices else 1}:{group}")
        self.ready = threading.Event()
        self.processed = 0
        self.outcomes: Counter[str] = Counter()
        self.reconnects = 0
        self._stop = threading.Event()
        if self._faults is not None:
            self._faults.register(group, self._channels)

    @property
    def channels(self) -> list[str]:
        return list(self._channels)

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        delay = 0.1
        while not stop.is_set():
            try:
                self._listen(stop)
                delay = 0.1
            except _Crashed:
                self._stay_down(stop)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self.reconnects += 1
                log.warning("%s lost Redis (%s); reconnecting in %.1fs", self.group, exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
            except Exception:  # a bug must not silently end the subscriber: log it and listen again
                log.exception("%s: subscriber failed; restarting it", self.group)
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)

    def _listen(self, stop: threading.Event) -> None:
        client = redis.Redis.from_url(
            self._redis_url, socket_connect_timeout=2, client_name=subscriber_name(self.group)
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        patterns = False
        try:
            pubsub.subscribe(*self._channels)
            self._drain(pubsub)  # past the PONG every subscription is confirmed: now messages reach us
            if self._faults is not None:
                self._faults.mark_up(self.group)
            self.ready.set()
            while not stop.is_set():
                if self._faults is not None:
                    if self._faults.crash_due(self.group):
                        self._crash(pubsub)
                    patterns = self._sync_patterns(pubsub, patterns)
                message = pubsub.get_message(timeout=POLL_S)
                if message:
                    self._on_batch(self._waiting(pubsub, [message]))
        finally:
            self.ready.clear()
            pubsub.close()
            client.close()

    @staticmethod
    def _waiting(pubsub, batch: list[dict]) -> list[dict]:
        while len(batch) < BATCH_MAX and (message := pubsub.get_message(timeout=0.0)):
            batch.append(message)
        return batch

    def _on_batch(self, messages: list[dict]) -> None:
        """Deliver messages in arrival order, their idempotency claims taken in one round trip."""
        items = []
        for message in messages:
            channel = message["channel"].decode() if message.get("channel") else None
            if message["type"] == "message" or (message["type"] == "pmessage" and channel in self._channels):
                items.append((channel, message["data"], message["type"] == "pmessage", self._decoded(message["data"])))
        flags = [self._claimable(event) for _, _, _, event in items]
        claimable = [item[3] for item, flag in zip(items, flags, strict=True) if flag]
        claims = iter(self._guard.claim_many(claimable) if claimable else [])
        for (channel, payload, pattern_copy, event), flag in zip(items, flags, strict=True):
            self.deliver(channel, payload, pattern_copy, event=event, claim=next(claims) if flag else _UNCLAIMED)

    @staticmethod
    def _decoded(payload: bytes) -> dict | None:
        try:
            return envelope.decode(payload)
        except envelope.InvalidEnvelope:
            return None

    def _claimable(self, event: dict | None) -> bool:
        if event is None or self._guard is None:
            return False
        return self._faults is None or not self._faults.lost_to(self.group, event["id"])

    def _drain(self, pubsub) -> None:
        """Handle everything Redis queued for us before now (a PING's reply comes after all of it)."""
        pubsub.ping()
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=POLL_S)
            if message and message["type"] == "pong":
                return
            if message:
                self._on_batch([message])

    def _crash(self, pubsub) -> None:
        self._faults.mark_down(self.group)
        self._drain(pubsub)
        log.warning("%s: crashed (fault consumer_crash); events published now are lost to it", self.group)
        raise _Crashed

    def _stay_down(self, stop: threading.Event) -> None:
        while not stop.is_set() and self._faults.crash_due(self.group):
            stop.wait(POLL_S / 2)
        log.warning("%s: restarted after a crash", self.group)

    def _sync_patterns(self, pubsub, subscribed: bool) -> bool:
        wanted = self._faults.double_subscribed(self.group)
        if wanted and not subscribed:
            pubsub.psubscribe(*self._channels)
        elif subscribed and not wanted:
            pubsub.punsubscribe(*self._channels)
        return wanted

    def deliver(
        self, channel: str, payload: bytes, pattern_copy: bool = False, event: dict | None = None, claim=_UNCLAIMED
    ) -> None:
        """Process one delivery inside its consumer span (``event`` and ``claim`` when already known)."""
        if event is None:
            try:
                event = envelope.decode(payload)
            except envelope.InvalidEnvelope as exc:
                self._dead_letter_invalid(channel, payload, exc)
                return
        if self._faults is not None:
            if self._faults.lost_to(self.group, event["id"]):
                return
            if pattern_copy:
                self._faults.double_delivery(self.group, channel, event)
        producer = telemetry.extract(event)
        producer_span = trace.get_current_span(producer).get_span_context()
        links = [Link(producer_span)] if producer_span.is_valid else []
        started = time.perf_counter()
        attributes = _event_attributes(channel, event)
        attributes["messaging.operation.type"] = "process"
        attributes["messaging.operation.name"] = "process"
        attributes["messaging.consumer.group.name"] = self.group
        with self._tracer.start_as_current_span(
            f"process {channel}",
            context=producer if self._parent_from_producer else Context(),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if self._practices is None:
                outcome = self._bare(channel, event, span)
            else:
                outcome = self._handle(channel, event, payload, span, claim)
            span.set_attribute(ATTR_OUTCOME, outcome)
        if self._practices is not None and self._practices.metrics is not None:
            self._practices.metrics.consumed(channel, self.group, time.perf_counter() - started, outcome)
        self.outcomes[outcome] += 1
        self.processed += 1

    def _bare(self, channel: str, event: dict, span: trace.Span) -> str:
        try:
            outcome = self._handler(channel, event, span) or "processed"
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            return "failed"
        span.set_attribute(ATTR_ATTEMPTS, 1)
        return outcome

    def _handle(self, channel: str, event: dict, payload: bytes, span: trace.Span, claim=_UNCLAIMED) -> str:
        duplicate_key = self._guard.claim(event) if claim is _UNCLAIMED else claim
        if duplicate_key is not None:
            span.set_attribute(ATTR_DEDUPE_KEY, duplicate_key)
            span.set_attribute(ATTR_ATTEMPTS, 0)
            return "duplicate_skipped"
        try:
            self._practices.registry.validate(event)
        except SchemaError as exc:
            return self._dead_letter(channel, event, payload, span, f"schema validation failed: {exc}", 1)
        event = self._practices.registry.upcast(event)
        if self._faults is not None:
            delay_s = self._faults.slow_delay_s(self.group, channel)
            if delay_s:
                time.sleep(delay_s)
        return self._attempts(channel, event, payload, span)

    def _attempts(self, channel: str, event: dict, payload: bytes, span: trace.Span) -> str:
        policy = self._practices.retry
        for attempt in range(1, policy.max_attempts + 1):
            try:
                if self._faults is not None:
                    self._faults.transient(self.group, channel, event, attempt)
                outcome = self._handler(channel, event, span) or "processed"
            except Exception as exc:
                stopping = self._stop.is_set()  # shutting down: no more attempts; Pub/Sub will not redeliver
                last = attempt == policy.max_attempts
                delay_ms = 0.0 if last or stopping else policy.delay_ms(attempt, self._rng)
                span.add_event(
                    RETRY_EVENT,
                    {ATTR_RETRY_ATTEMPT: attempt, ATTR_RETRY_DELAY_MS: delay_ms, "exception.message": str(exc)},
                )
                if last:
                    reason = f"failed after {attempt} attempts: {exc}"
                    return self._dead_letter(channel, event, payload, span, reason, attempt)
                if stopping:
                    span.set_status(Status(StatusCode.ERROR, f"stopped after attempt {attempt}: {exc}"))
                    span.set_attribute(ATTR_ATTEMPTS, attempt)
                    try:
                        self._guard.release(event)
                    except redis.RedisError:
                        pass  # the claim expires with the dedupe window
                    return "failed"
                self._stop.wait(delay_ms / 1000.0)
            else:
                span.set_attribute(ATTR_ATTEMPTS, attempt)
                return outcome
        raise AssertionError("unreachable: the loop returns on success or on the last attempt")

    def _dead_letter(self, channel: str, event: dict, payload: bytes, span: trace.Span, reason: str, attempts: int):
        dead_letters = self._practices.dead_letters
        span.set_attribute(ATTR_ATTEMPTS, attempts)
        span.set_status(Status(StatusCode.ERROR, reason))
        try:
            dead_letters.add(
                channel=channel,
                group=self.group,
                payload=payload.decode(errors="replace") if isinstance(payload, bytes) else payload,
                reason=reason,
                attempts=attempts,
                event_id=event.get("id"),
            )
            self._guard.release(event)
        except redis.RedisError as exc:
            log.error("%s: could not dead-letter %s: %s", self.group, event.get("id"), exc)
            return "failed"
        span.set_attribute(ATTR_DEAD_LETTER_REASON, reason)
        span.set_attribute(ATTR_DEAD_LETTER_QUEUE, dead_letters.stream)
        log.warning("%s: dead-lettered %s: %s", self.group, event.get("id"), reason)
        if self._faults is not None:
            self._faults.dead_letter(self.group, channel, event, reason, attempts)
        return "dead_lettered"

    def _dead_letter_invalid(self, channel: str, payload: bytes, exc: Exception) -> None:
        log.warning("%s: invalid event on %s: %s", self.group, channel, exc)
        if self._practices is not None:
            self._practices.dead_letters.add(
                channel=channel,
                group=self.group,
                payload=payload.decode(errors="replace") if isinstance(payload, bytes) else str(payload),
                reason=f"not a CloudEvent: {exc}",
                attempts=0,
                event_id=None,
            )
