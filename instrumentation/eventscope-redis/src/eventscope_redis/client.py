"""One client instrumented on its own: its settings, its steps, and the PubSubs it makes.

``instrument()`` patches redis-py's classes, so every client of a process shares one source, one
consumer group and one tracer provider. A process that runs several services (each its own provider,
source and consumer group) instruments each service's client instead. The client's own ``publish`` /
``spublish`` and ``pubsub`` are replaced on the instance; the PubSubs it makes are wrapped the same way.
They call redis-py's original methods, so a client instrumented on its own is traced once even when
``instrument()`` is on as well. Sync ``redis.Redis`` and ``RedisCluster`` clients; a pipeline's publishes are
not wrapped.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis
import redis.cluster
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from eventscope_redis import attributes, propagation, steps, wire
from eventscope_redis.consumer import DATA_MESSAGES, Consumer, Delivery, _channel, _message_type
from eventscope_redis.instrumentor import _bind_publish, _channel_text, _close, _encoded, _get, _listen, _with_message
from eventscope_redis.producer import Producer, counts
from eventscope_redis.settings import ChannelFilter, Settings
from eventscope_redis.version import __version__

SCOPED = "_eventscope_settings"  # the attribute of an instrumented client (and its PubSubs) holding its settings
PUBLISHES = (("publish", "publish"), ("spublish", "spublish"))
PUBSUB_CLOSERS = ("close", "reset")
SUBSCRIBERS = ("subscribe", "psubscribe", "ssubscribe")
CONSUMER = "_eventscope_consumer"  # the attribute of an instrumented PubSub holding its client's consumer
PEEKED_MAX = 1024  # replies read ahead and not yet handled, kept per client
CLIENTS = (redis.Redis, redis.cluster.RedisCluster)  # a cluster client's publish and spublish are traced too


def instrument_client(
    client: redis.Redis | redis.cluster.RedisCluster,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    consumer_group: str | None = None,
    parent: bool = True,
    source: str | None = None,
    event_type: Callable[[str], str] | None = None,
    mixed_fleet: bool = False,
    producer_steps: Sequence[steps.Step] = (),
    arrival_steps: Sequence[steps.Step] = (),
    delivery_steps: Sequence[steps.Step] = (),
) -> Settings:
    """Trace ``client``'s Pub/Sub with these settings (the options of ``instrument()``, plus steps).

    Returns the client's settings (``source``, ``consumer_group`` ...). Instrumenting it again replaces them.
    """
    if not isinstance(client, CLIENTS):
        raise TypeError(f"instrument_client takes a redis.Redis or RedisCluster client, not {type(client).__name__}")
    uninstrument_client(client)
    settings = Settings(
        tracer=trace.get_tracer(__name__, __version__, tracer_provider=tracer_provider),
        provider=tracer_provider,
        traced=ChannelFilter(include, exclude),
        group=consumer_group,
        source_uri=source,
        parent=parent,
        mixed_fleet=mixed_fleet,
        event_type=event_type,
    )
    producer = SteppedProducer(settings, producer_steps)
    consumer = SteppedConsumer(settings, arrival_steps, delivery_steps)
    for method, operation in PUBLISHES:
        _bind(client, method, _publish(producer, operation))
    _bind(client, "pubsub", _pubsub(consumer))
    client.__dict__[SCOPED] = settings
    return settings


def uninstrument_client(client: redis.Redis) -> None:
    """Give ``client`` its plain methods back (PubSubs it already made stay instrumented)."""
    if client.__dict__.pop(SCOPED, None) is None:
        return
    for method in (*(name for name, _ in PUBLISHES), "pubsub"):
        client.__dict__.pop(method, None)


def client_settings(client: object) -> Settings | None:
    """The settings ``client`` (or a PubSub it made) was instrumented with, or None."""
    return getattr(client, "__dict__", {}).get(SCOPED)


def peek(pubsub: object, response: object) -> dict | None:
    """The CloudEvent attributes of a raw Pub/Sub reply that ``pubsub`` read but has not handled yet.

    For an application that reads a batch of replies (``parse_response``) and needs their events before it
    hands each to ``handle_message`` (to take their idempotency claims in one round trip, say): a PubSub of
    an instrumented client keeps what it read, so handling the reply later does not read it again.
    """
    consumer = getattr(pubsub, "__dict__", {}).get(CONSUMER)
    if consumer is not None:
        return consumer.peek(response)
    raw = _data(response)
    return None if raw is _NO_DATA else wire.unwrap(raw).attributes


_NO_DATA = object()


def _data(response: object) -> object:
    """The data of a message reply (``_NO_DATA`` for any other reply)."""
    kind = _message_type(response)
    if kind is None:
        return _NO_DATA
    data_at = DATA_MESSAGES[kind][1]
    return response[data_at] if len(response) > data_at else _NO_DATA


def _original(instance: object, method: str) -> Callable:
    """redis-py's own ``instance.method``, bound (not a class-level wrapper of ``instrument()``)."""
    cls = type(instance)
    found = getattr(cls, method)
    return getattr(found, "__wrapped__", found).__get__(instance, cls)


def _bind(instance: object, method: str, wrapper: Callable) -> None:
    """Replace ``instance.method`` by ``wrapper(original, instance, args, kwargs)``."""
    original = _original(instance, method)

    def call(*args, **kwargs):
        return wrapper(original, instance, args, kwargs)

    instance.__dict__[method] = call


class SteppedProducer(Producer):
    """Numbers each publish, runs the producer steps, then sends it inside its PRODUCER span."""

    def __init__(self, settings: Settings, producer_steps: Sequence[steps.Step] = ()):
        super().__init__(settings)
        self._run = steps.chain(producer_steps, self._send)

    def publish(self, channel: str, payload: bytes, operation: str, transport: Callable[[bytes], Any]) -> Any:
        context = otel_context.get_current()
        now_ns = time.time_ns()
        outgoing = steps.Outgoing(channel, self.numbered(channel, now_ns), payload, context, 0, transport, operation)
        return self._run(outgoing)

    def _send(self, outgoing: steps.Outgoing) -> Any:
        skew = outgoing.clock_skew_ns
        started = time.time_ns() + skew
        event = dict(outgoing.attributes)  # a step may send it again: each send has its own traceparent
        if skew:
            event["time"] = wire.rfc3339(started)
        span = self._settings.tracer.start_span(
            f"send {outgoing.channel}",
            context=outgoing.context,
            kind=SpanKind.PRODUCER,
            attributes=attributes.producer(outgoing.channel, outgoing.operation, event, len(outgoing.payload)),
            start_time=started,
        )
        propagation.inject_span(event, span)
        data = wire.wrap(outgoing.payload, event, self._settings.mixed_fleet)
        try:
            result = outgoing.transport(data)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            span.end(end_time=time.time_ns() + skew if skew else None)
            raise
        if counts(result) and span.is_recording():
            span.set_attribute(attributes.RECEIVERS, result)
        span.end(end_time=time.time_ns() + skew if skew else None)
        return result


class SteppedConsumer(Consumer):
    """Runs the arrival steps, starts the CONSUMER span, then runs the delivery steps around the handler."""

    def __init__(
        self, settings: Settings, arrival_steps: Sequence[steps.Step] = (), delivery_steps: Sequence[steps.Step] = ()
    ):
        super().__init__(settings)
        self._arrive = steps.chain(arrival_steps, self._deliver)
        self._handle = steps.chain(delivery_steps, _hand_over)
        self._peeked: dict[int, tuple[object, wire.Received]] = {}

    def peek(self, response: object) -> dict | None:
        """``peek()`` for a PubSub of this client: the reply's reading is kept for ``handle_message``."""
        raw = _data(response)
        if raw is _NO_DATA:
            return None
        received = wire.unwrap(raw)
        if len(self._peeked) >= PEEKED_MAX:  # read ahead and never handled: forget, it is read again if it comes
            self._peeked.clear()
        self._peeked[id(raw)] = (raw, received)  # the reference kept makes the id unique while it is here
        return received.attributes

    def _unwrap(self, raw: object) -> wire.Received:
        found = self._peeked.pop(id(raw), None) if self._peeked else None
        return found[1] if found is not None and found[0] is raw else wire.unwrap(raw)

    def handle_message(
        self, wrapped: Callable, pubsub: object, response: Any, ignore_subscribe_messages: bool = False
    ) -> Any:
        """One PubSub's ``handle_message`` (bound to it with its original as ``wrapped``)."""
        self.finish_open(pubsub)
        kind = _message_type(response)
        if kind is None:
            return wrapped(response, ignore_subscribe_messages)
        channel_at, data_at, pattern_at = DATA_MESSAGES[kind]
        if len(response) <= data_at:
            return wrapped(response, ignore_subscribe_messages)
        raw = response[data_at]
        received = self._unwrap(raw)
        if received.wrapped:
            response = list(response)
            response[data_at] = received.payload
        channel = _channel(response[channel_at])
        if not self._settings.traced(channel):
            return wrapped(response, ignore_subscribe_messages)
        pattern = _channel(response[pattern_at]) if pattern_at is not None else None
        incoming = steps.Incoming(
            channel, pattern, self._settings.consumer_group, received.attributes, received.payload, raw
        )
        incoming.hand_over = lambda: wrapped(response, ignore_subscribe_messages)
        delivered = self._arrive(incoming)
        if delivered is None:  # an arrival step discarded it
            return None
        handed, delivery = delivered
        if handed is None:
            delivery.end()
        else:
            self.keep_open(pubsub, delivery)
        return handed

    def _deliver(self, incoming: steps.Incoming) -> tuple[Any, Delivery]:
        delivery = Delivery(self._start(incoming.channel, incoming.pattern, incoming.attributes, incoming.payload))
        incoming.span = delivery.span
        token = steps.current_as(incoming)
        try:
            handed = incoming.hand_over()
        except BaseException as exc:
            delivery.end(error=exc)
            raise
        finally:
            steps.restore(token)
        return handed, delivery

    def chained(self, handler: Callable[[dict], Any]) -> Callable[[dict], Any]:
        """``handler`` behind the delivery steps: what a PubSub of this client subscribes with."""

        def run(message: dict) -> Any:
            incoming = steps.delivery()
            if incoming is None:
                return handler(message)
            incoming.hand_over = lambda: handler(message)
            return self._handle(incoming)

        run.__wrapped__ = handler
        return run


def _hand_over(incoming: steps.Incoming) -> Any:
    return incoming.hand_over()


def _publish(producer: SteppedProducer, operation: str) -> Callable:
    def wrapper(wrapped, instance, args, kwargs):
        try:
            channel, payload = _bind_publish(*args, **kwargs)
        except TypeError:
            return wrapped(*args, **kwargs)
        name = _channel_text(channel)
        encoded = _encoded(instance, payload)
        if encoded is None or not producer.traces(name):
            return wrapped(*args, **kwargs)

        def transport(data: bytes) -> Any:
            sent_args, sent_kwargs = _with_message(args, kwargs, data)
            return wrapped(*sent_args, **sent_kwargs)

        return producer.publish(name, encoded, operation, transport)

    return wrapper


def _pubsub(consumer: SteppedConsumer) -> Callable:
    def wrapper(wrapped, instance, args, kwargs):
        pubsub = wrapped(*args, **kwargs)
        pubsub.__dict__["handle_message"] = functools.partial(
            consumer.handle_message, _original(pubsub, "handle_message"), pubsub
        )
        _bind(pubsub, "get_message", _get(consumer))
        _bind(pubsub, "listen", _listen(consumer))
        for method in PUBSUB_CLOSERS:
            _bind(pubsub, method, _close(consumer))
        for method in SUBSCRIBERS:
            if hasattr(pubsub, method):
                _bind(pubsub, method, _subscribe(consumer))
        pubsub.__dict__[SCOPED] = consumer._settings
        pubsub.__dict__[CONSUMER] = consumer
        return pubsub

    return wrapper


def _subscribe(consumer: SteppedConsumer) -> Callable:
    def wrapper(wrapped, instance, args, kwargs):
        handlers = {name: consumer.chained(h) if callable(h) else h for name, h in kwargs.items()}
        return wrapped(*args, **handlers)

    return wrapper
