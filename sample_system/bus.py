"""The shop's bus: its practices around eventscope-redis's traced publish and delivery.

eventscope-redis numbers each event, sends it as a CloudEvent and traces it (a PRODUCER span ``send
{channel}``, a CONSUMER span ``process {channel}`` per delivery, docs/events.md); every service has
its own instrumented client (its own tracer provider, source and consumer group).

Every consumer group applies the shop's practices to each delivery, as delivery steps in this order:
the idempotency guard (skip a copy), schema validation (dead-letter an invalid event), upcasting to the
newest schema version, then the handler with retries (exponential backoff and jitter, one ``retry``
span event per failed attempt) and, after the last attempt, the dead-letter queue. Faults are steps
too, which the FaultInjector gives per stage (sample_system.faults); the bus places them and never asks
which fault is on.

On a Redis Cluster (sample_system.cluster) events go on sharded channels: SPUBLISH through the cluster
client, and one SSUBSCRIBE connection per shard owner for each consumer group, placed again after a
failover or a slot migration.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import random
import select
import threading
import time
import zlib
from collections.abc import Callable, Sequence

import redis
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

import eventscope_redis
from eventscope_redis import Incoming, Outgoing, RedisPubSubInstrumentor
from eventscope_redis.attributes import ATTEMPTS, OUTCOME
from sample_system import cluster, handling, telemetry
from sample_system.deadletters import DeadLetterQueue
from sample_system.dedupe import IdempotencyGuard
from sample_system.faults import FaultInjector, Stage, Subscription
from sample_system.faults import steps as fault_steps
from sample_system.registry import SchemaError, SchemaRegistry
from sample_system.retry import RetryPolicy

log = logging.getLogger(__name__)

ATTR_DEAD_LETTER_REASON = "eventscope.dead_letter.reason"
ATTR_DEAD_LETTER_QUEUE = "eventscope.dead_letter.queue"
ATTR_DEDUPE_KEY = "eventscope.dedupe.key"
RETRY_EVENT = "retry"
ATTR_RETRY_ATTEMPT = "eventscope.attempt"
ATTR_RETRY_DELAY_MS = "eventscope.retry.delay_ms"
RECONNECT_MAX_S = 2.0
POLL_S = 0.2  # how long a subscriber waits for a message before looking at its faults again
DRAIN_TIMEOUT_S = 5.0
BATCH_MAX = 64  # messages already waiting are read together: one round trip takes their idempotency claims
MESSAGE_REPLIES = (b"message", b"pmessage", b"smessage")
CLIENT_NAME_PREFIX = "sample-"  # every Redis connection of the sample system is named (CLIENT SETNAME)
REQUIRED = ("id", "source", "type")
INSTRUMENTOR = RedisPubSubInstrumentor()


def subscriber_name(group: str) -> str:
    """The Redis client name of a consumer group's subscriber, as CLIENT LIST shows it."""
    return client_name(group)


def publisher_name(service: str) -> str:
    """The Redis client name of a service's publishing connection."""
    return client_name(f"{service}-publisher")


def client_name(role: str) -> str:
    """``sample-ROLE``, each character Redis refuses in a name (outside ``!``..``~``: spaces too) made a dash."""
    return CLIENT_NAME_PREFIX + "".join(c if "!" <= c <= "~" else "-" for c in role)


PARTITIONS = 4
"""Shards per channel: few and long streams, so that a lost event leaves a gap to see."""


def partition_of(key: str, partitions: int = PARTITIONS) -> str:
    """A shard of the channel, stable for an entity: crc32(key) mod partitions."""
    return f"p{zlib.crc32(key.encode()) % partitions}"


class Publisher:
    """One producer instance of a service: its own instrumented client, so its own source and streams.

    eventscope-redis numbers each stream (channel, partition key) from 1. With a registry every event is
    validated before PUBLISH (a SchemaError is the caller's bug); with a FaultInjector, the producer
    faults are steps between numbering and PUBLISH.
    """

    def __init__(
        self,
        client: redis.Redis,
        provider: trace.TracerProvider,
        source: str,
        *,
        registry: SchemaRegistry | None = None,
        faults: FaultInjector | None = None,
        metrics: telemetry.MessagingMetrics | None = None,
        steps: Sequence[Callable] = (),
    ):
        """``steps``: further producer steps, after the faults' (a channel's copy to a stream, ...)."""
        self._client = client
        self._sharded = isinstance(client, cluster.RedisCluster)
        self.source = source
        self._registry = registry
        self._metrics = metrics
        self._sending = threading.local()
        self.published = 0
        steps = [self._assigned, *fault_steps(faults, Stage.PUBLISH), *steps, self._sent]
        INSTRUMENTOR.instrument_client(client, tracer_provider=provider, source=source, producer_steps=steps)

    def entity_event(self, channel: str, type: str, data, entity_id: str, dataschema: str) -> dict:  # noqa: A002
        """An event about one entity: its id is the subject, and its shard of the channel the partition key."""
        return self.event(
            channel, type, data, partitionkey=partition_of(entity_id), subject=entity_id, dataschema=dataschema
        )

    def event(self, channel: str, type: str, data, partitionkey: str | None = None, **fields) -> dict:  # noqa: A002
        """A new event for ``channel``; id, source, time and sequence are given when it is published."""
        event = {"type": type, "data": data, **{name: value for name, value in fields.items() if value is not None}}
        if partitionkey is not None:
            event["partitionkey"] = partitionkey
        return event

    def publish(self, channel: str, event: dict) -> int:
        """Validate and PUBLISH; ``event`` gains the attributes it went out with. Returns the receivers."""
        if self._registry is not None:
            self._registry.validate(event)
        payload = json.dumps(event.get("data"), separators=(",", ":")).encode()
        chosen = {name: event.get(name) for name in ("type", "subject", "partitionkey", "dataschema")}
        with eventscope_redis.message(**chosen):
            send = self._client.spublish if self._sharded else self._client.publish  # the instrumented ones
            receivers = send(channel, payload)
        event.update(getattr(self._sending, "attributes", None) or {})
        return receivers

    def _assigned(self, outgoing: Outgoing, proceed: Callable) -> object:
        self._sending.attributes = outgoing.attributes
        return proceed(outgoing)

    def _sent(self, outgoing: Outgoing, proceed: Callable) -> object:
        receivers = proceed(outgoing)
        self.published += 1
        if self._metrics is not None:
            self._metrics.sent(outgoing.channel)
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


class InvalidEvent(ValueError):
    """A delivery is not an event the shop can handle; the message says why."""


class _Crashed(Exception):
    """The consumer_crash fault took this subscriber down."""


def event_of(incoming: Incoming) -> dict:
    """The CloudEvent a delivery carried, with its data decoded; InvalidEvent when it is not one."""
    attributes = incoming.attributes
    if attributes is None:
        raise InvalidEvent("not a CloudEvent")
    missing = [name for name in REQUIRED if not isinstance(attributes.get(name), str) or not attributes.get(name)]
    if missing:
        raise InvalidEvent("missing or empty required attribute(s): " + ", ".join(missing))
    if attributes.get("sequence") is not None and incoming.sequence is None:
        raise InvalidEvent("sequence must be a decimal integer string")
    try:
        data = json.loads(incoming.payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # nested too deep to decode: not JSON to us
        raise InvalidEvent(f"data is not JSON: {exc}") from None
    return {**attributes, "data": data}


class Consumer:
    """One consumer group's subscriber: runs ``handler`` per delivery inside its consumer span.

    The handler returns the outcome (``processed`` when it returns None); the practices around it are
    in the module docstring. Reconnects by itself when Redis goes away.
    """

    def __init__(
        self,
        redis_url: str,
        provider: trace.TracerProvider,
        group: str,
        channels: list[str],
        handler: Handler,
        parent_from_producer: bool = True,
        *,
        practices: Practices,
    ):
        self._redis_url = redis_url
        self._provider = provider
        self.group = group
        self._channels = list(channels)
        self._handler = handler
        self._parent_from_producer = parent_from_producer
        self._practices = practices
        self._subscription = Subscription(practices.faults, group, self._channels)
        self._guard = IdempotencyGuard(practices.client, group, practices.dedupe_window_s)
        self._rng = random.Random(f"{practices.seed}:{group}")
        self.ready = threading.Event()
        self.processed = 0
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.reconnects = 0
        self._stop = threading.Event()
        self._claimed: dict[tuple[str, str], collections.deque] = {}
        injector = practices.faults
        self._arrival_steps = fault_steps(injector, Stage.ARRIVAL)
        self._delivery_steps = [
            self._receive,
            *fault_steps(injector, Stage.SETTLED),
            self._check,
            *fault_steps(injector, Stage.HANDLING),
            self._retry,
            *fault_steps(injector, Stage.ATTEMPT),
        ]

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
            except (redis.ConnectionError, redis.TimeoutError, OSError, *cluster.SHARD_MOVES) as exc:
                self.reconnects += 1
                log.warning("%s lost Redis (%s); reconnecting in %.1fs", self.group, exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
            except Exception:  # a bug must not silently end the subscriber: log it and listen again
                log.exception("%s: subscriber failed; restarting it", self.group)
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)

    def _client(self, node: cluster.Address | None = None) -> redis.Redis:
        client = redis.Redis.from_url(
            self._redis_url, socket_connect_timeout=2, client_name=subscriber_name(self.group)
        )
        if node is not None:  # a shard owner: the cluster URL's credentials, this node's address
            client.connection_pool.connection_kwargs.update(host=node[0], port=node[1])
        INSTRUMENTOR.instrument_client(
            client,
            tracer_provider=self._provider,
            consumer_group=self.group,
            parent=self._parent_from_producer,
            arrival_steps=self._arrival_steps,
            delivery_steps=self._delivery_steps,
        )
        return client

    def _listen(self, stop: threading.Event) -> None:
        if isinstance(self._practices.client, cluster.RedisCluster):
            self._listen_sharded(stop, self._practices.client)
            return
        client = self._client()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        patterns = False
        try:
            pubsub.subscribe(**self._handlers())
            self._drain(pubsub)  # past the PONG every subscription is confirmed: now messages reach us
            self._subscription.up()
            self.ready.set()
            while not stop.is_set():
                if self._subscription.crash_due():
                    self._crash(pubsub)
                patterns = self._sync_patterns(pubsub, patterns)
                batch = self._waiting(pubsub)
                self._claim_ahead(pubsub, batch)
                for response in batch:  # each goes through the steps to _on_message
                    pubsub.handle_message(response, ignore_subscribe_messages=True)
        finally:
            self.ready.clear()
            pubsub.close()
            client.close()

    def _listen_sharded(self, stop: threading.Event, cluster_client: cluster.RedisCluster) -> None:
        """The group's sharded channels, each SSUBSCRIBEd at its shard's owner; any lost owner starts it over."""
        clients, pubsubs = [], []
        try:
            for node, channels in cluster.owners(cluster_client, self._channels).items():
                clients.append(self._client(node))
                pubsubs.append(clients[-1].pubsub(ignore_subscribe_messages=True))
                for channel in channels:  # one SSUBSCRIBE each: several channels in one must share a slot
                    pubsubs[-1].ssubscribe(**{channel: self._on_message})
            for pubsub in pubsubs:
                self._drain(pubsub)
            self._subscription.up()
            self.ready.set()
            behind = False
            while not stop.is_set():
                if self._subscription.crash_due():
                    self._crash(*pubsubs)
                if not behind:  # a full batch may have left replies read into the parser: no waiting then
                    _readable(pubsubs, POLL_S)
                behind = False
                for pubsub in pubsubs:
                    batch = self._waiting(pubsub, timeout=0.0)
                    behind = behind or len(batch) == BATCH_MAX
                    self._claim_ahead(pubsub, batch)
                    for response in batch:
                        pubsub.handle_message(response, ignore_subscribe_messages=True)
        finally:
            self.ready.clear()
            for closing in (*pubsubs, *clients):
                closing.close()

    @staticmethod
    def _waiting(pubsub, timeout: float = POLL_S) -> list:
        """The replies waiting now (after up to ``timeout`` for the first), read but not yet handled."""
        first = pubsub.parse_response(block=False, timeout=timeout)
        batch = [first] if first else []
        while batch and len(batch) < BATCH_MAX and (reply := pubsub.parse_response(block=False, timeout=0.0)):
            batch.append(reply)
        return batch

    def _claim_ahead(self, pubsub, batch: list) -> None:
        """Take the idempotency claims of a batch in one round trip, in arrival order, before it is handled.

        A message alone takes its claim when it is handled: one round trip either way. The library keeps
        what it read of each message here (eventscope_redis.peek), so handling it does not read it again.
        """
        self._claimed = {}
        if len(batch) < 2:
            return
        events = [event for event in (_identity(pubsub, reply) for reply in batch) if event is not None]
        claims = self._guard.claim_many(events) if events else []
        self._claimed = collections.defaultdict(collections.deque)
        for event, claim in zip(events, claims, strict=True):
            self._claimed[(event["source"], event["id"])].append(claim)

    def _handlers(self) -> dict[str, Callable]:
        return dict.fromkeys(self._channels, self._on_message)

    def _drain(self, pubsub) -> None:
        """Handle everything Redis queued for us before now (a PING's reply comes after all of it)."""
        pubsub.ping()
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=POLL_S)
            if message and message["type"] == "pong":
                return

    def _crash(self, *pubsubs) -> None:
        self._subscription.down()
        for pubsub in pubsubs:
            self._drain(pubsub)
        log.warning("%s: crashed (fault consumer_crash); events published now are lost to it", self.group)
        raise _Crashed

    def _stay_down(self, stop: threading.Event) -> None:
        while not stop.is_set() and self._subscription.crash_due():
            stop.wait(POLL_S / 2)
        log.warning("%s: restarted after a crash", self.group)

    def _sync_patterns(self, pubsub, subscribed: bool) -> bool:
        wanted = self._subscription.double_subscribed()
        if wanted and not subscribed:
            pubsub.psubscribe(**self._handlers())
        elif subscribed and not wanted:
            pubsub.punsubscribe(*self._channels)
        return wanted

    # Delivery steps, outermost first -------------------------------------------------------------

    def _receive(self, incoming: Incoming, proceed: Callable) -> object:
        """Read the event, skip a copy (the idempotency guard), then account for how the delivery ended."""
        started = time.perf_counter()
        ending = handling.of(incoming)
        result = None
        try:
            ending.event = event_of(incoming)
        except InvalidEvent as exc:
            self._dead_letter_invalid(incoming, exc)
        else:
            if not self._copy(incoming, ending):
                result = proceed(incoming)
        self._settle(incoming, ending, time.perf_counter() - started)
        return result

    def _copy(self, incoming: Incoming, ending: handling.Handling) -> bool:
        """True when the guard already holds this event's claim for the group (a duplicate, skipped)."""
        event = ending.event
        taken = self._claimed.get((event["source"], event["id"]))
        duplicate_key = taken.popleft() if taken else self._guard.claim(event)
        if duplicate_key is None:
            return False
        incoming.span.set_attribute(ATTR_DEDUPE_KEY, duplicate_key)
        ending.outcome, ending.attempts = handling.DUPLICATE_SKIPPED, 0
        return True

    def _settle(self, incoming: Incoming, ending: handling.Handling, seconds: float) -> None:
        span = incoming.span
        if ending.outcome != handling.PROCESSED:  # the library starts every span processed, one attempt
            span.set_attribute(OUTCOME, ending.outcome)
        if ending.attempts != 1:
            span.set_attribute(ATTEMPTS, ending.attempts)
        if self._practices.metrics is not None:
            self._practices.metrics.consumed(incoming.channel, self.group, seconds, ending.outcome)
        self.outcomes[ending.outcome] += 1
        self.processed += 1

    def _check(self, incoming: Incoming, proceed: Callable) -> object:
        """Schema validation (an invalid event is dead-lettered at once), then upcasting to the newest version."""
        ending = handling.of(incoming)
        try:
            self._practices.registry.validate(ending.event)
        except SchemaError as exc:
            self._dead_letter(incoming, f"schema validation failed: {exc}", 1)
            return None
        ending.event = self._practices.registry.upcast(ending.event)
        return proceed(incoming)

    def _retry(self, incoming: Incoming, proceed: Callable) -> object:
        policy, ending, span = self._practices.retry, handling.of(incoming), incoming.span
        for attempt in range(1, policy.max_attempts + 1):
            ending.attempt = attempt
            try:
                return proceed(incoming)
            except Exception as exc:
                stopping = self._stop.is_set()  # shutting down: no more attempts; Pub/Sub will not redeliver
                last = attempt == policy.max_attempts
                delay_ms = 0.0 if last or stopping else policy.delay_ms(attempt, self._rng)
                span.add_event(
                    RETRY_EVENT,
                    {ATTR_RETRY_ATTEMPT: attempt, ATTR_RETRY_DELAY_MS: delay_ms, "exception.message": str(exc)},
                )
                if last:
                    self._dead_letter(incoming, f"failed after {attempt} attempts: {exc}", attempt)
                    return None
                if stopping:
                    self._stopped(incoming, attempt, exc)
                    return None
                self._stop.wait(delay_ms / 1000.0)
            finally:
                ending.attempts = attempt
        raise AssertionError("unreachable: the loop returns on success or on the last attempt")

    def _on_message(self, message: dict) -> None:
        """The innermost step: the service's handler, inside the delivery's span."""
        incoming = eventscope_redis.delivery()
        ending = handling.of(incoming)
        ending.outcome = self._handler(incoming.channel, ending.event, incoming.span) or handling.PROCESSED

    # Endings -------------------------------------------------------------------------------------

    def _stopped(self, incoming: Incoming, attempt: int, exc: Exception) -> None:
        ending = handling.of(incoming)
        incoming.span.set_status(Status(StatusCode.ERROR, f"stopped after attempt {attempt}: {exc}"))
        ending.outcome = handling.FAILED
        try:
            self._guard.release(ending.event)
        except redis.RedisError:
            pass  # the claim expires with the dedupe window

    def _dead_letter(self, incoming: Incoming, reason: str, attempts: int) -> None:
        dead_letters, ending, span = self._practices.dead_letters, handling.of(incoming), incoming.span
        event = ending.event
        ending.attempts = attempts
        span.set_status(Status(StatusCode.ERROR, reason))
        ending.outcome = handling.FAILED
        try:
            dead_letters.add(
                channel=incoming.channel,
                group=self.group,
                payload=_text(incoming.wire),
                reason=reason,
                attempts=attempts,
                event_id=event.get("id"),
            )
            self._guard.release(event)
        except redis.RedisError as exc:
            log.error("%s: could not dead-letter %s: %s", self.group, event.get("id"), exc)
            return
        span.set_attribute(ATTR_DEAD_LETTER_REASON, reason)
        span.set_attribute(ATTR_DEAD_LETTER_QUEUE, dead_letters.stream)
        log.warning("%s: dead-lettered %s: %s", self.group, event.get("id"), reason)
        ending.outcome, ending.dead_letter_reason = handling.DEAD_LETTERED, reason

    def _dead_letter_invalid(self, incoming: Incoming, exc: Exception) -> None:
        ending = handling.of(incoming)
        log.warning("%s: invalid event on %s: %s", self.group, incoming.channel, exc)
        ending.outcome, ending.attempts = handling.DEAD_LETTERED, 0
        incoming.span.set_status(Status(StatusCode.ERROR, f"not a CloudEvent: {exc}"))
        self._practices.dead_letters.add(
            channel=incoming.channel,
            group=self.group,
            payload=_text(incoming.wire),
            reason=f"not a CloudEvent: {exc}",
            attempts=0,
            event_id=None,
        )


def _readable(pubsubs: list, timeout: float) -> None:
    """Wait up to ``timeout`` until one of the PubSubs' connections has something to read."""
    sockets = [getattr(p.connection, "_sock", None) for p in pubsubs if p.connection is not None]
    if not sockets or any(sock is None for sock in sockets):
        time.sleep(min(timeout, 0.01))
        return
    try:
        select.select(sockets, [], [], timeout)
    except (OSError, ValueError):  # a connection closed: the next read says so
        pass


def _identity(pubsub, reply: object) -> dict | None:
    """The CloudEvent attributes of a raw Pub/Sub message reply, when it carries an event with an id."""
    if not isinstance(reply, list) or len(reply) < 3 or reply[0] not in MESSAGE_REPLIES:
        return None
    attributes = eventscope_redis.peek(pubsub, reply)
    if not attributes or not isinstance(attributes.get("id"), str) or not isinstance(attributes.get("source"), str):
        return None
    return attributes


def _text(payload: bytes | str) -> str:
    return payload.decode(errors="replace") if isinstance(payload, bytes) else str(payload)
