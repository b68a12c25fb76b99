"""The consuming side: each delivered message is unwrapped and processed inside a CONSUMER span.

A message handed to a handler callback is processed when the handler returns. A message returned by
``get_message`` / ``listen`` is processed by the application's own loop, so its span stays open (and
current) until the application asks for the next message or closes the subscription.
"""

from __future__ import annotations

import functools

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN_CONTEXT, Link, NonRecordingSpan, SpanKind, Status, StatusCode

from eventscope_redis import attributes, propagation, wire
from eventscope_redis.settings import Settings

DATA_MESSAGES = {"message": (1, 2, None), "pmessage": (2, 3, 1), "smessage": (1, 2, None)}
"""Message type -> (channel index, data index, pattern index) in the raw Pub/Sub reply."""
_KINDS = {**{kind: kind for kind in DATA_MESSAGES}, **{kind.encode(): kind for kind in DATA_MESSAGES}}
OPEN = "_eventscope_delivery"  # the attribute of a PubSub that holds its open delivery
_CACHE_MAX = 4096  # channel names kept decoded


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


@functools.lru_cache(maxsize=_CACHE_MAX)
def _name(value: bytes | str) -> str:
    return _text(value)


def _channel(value: object) -> str:
    """A channel's name as text; the few a subscriber hears are decoded once."""
    return _name(value) if type(value) is bytes or type(value) is str else _text(value)


def _message_type(response: object) -> str | None:
    if not isinstance(response, list | tuple) or len(response) < 3:
        return None
    kind = response[0]
    return _KINDS.get(kind) if isinstance(kind, bytes | str) else None


class Delivery:
    """One delivery's span and the context token that made it current."""

    __slots__ = ("context", "span", "token")

    def __init__(self, span: trace.Span):
        self.span = span
        self.context = trace.set_span_in_context(span)
        self.token = otel_context.attach(self.context)

    def end(self, error: BaseException | None = None) -> None:
        span = self.span
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            if span.is_recording():
                span.set_attribute(attributes.OUTCOME, attributes.FAILED)  # ``processed`` was set at the start
        current = otel_context.get_current()
        if current is self.context or trace.get_current_span(current) is span:  # the application may have
            otel_context.detach(self.token)  # changed context meanwhile
        span.end()


class Consumer:
    def __init__(self, settings: Settings):
        self._settings = settings

    def receive(self, response: object) -> tuple[object, Delivery | None]:
        """The reply with the application's own payload in place, and the delivery started for it."""
        kind = _message_type(response)
        if kind is None:
            return response, None
        channel_at, data_at, pattern_at = DATA_MESSAGES[kind]
        if len(response) <= data_at:
            return response, None
        received = wire.unwrap(response[data_at])
        if received.wrapped:
            response = list(response)
            response[data_at] = received.payload
        channel = _channel(response[channel_at])
        if not self._settings.traced(channel):
            return response, None
        pattern = _channel(response[pattern_at]) if pattern_at is not None else None
        return response, Delivery(self._start(channel, pattern, received.attributes, received.payload))

    def _start(self, channel: str, pattern: str | None, event: dict | None, payload: object) -> trace.Span:
        settings = self._settings
        producer_span = propagation.extract_span(event) if event else INVALID_SPAN_CONTEXT
        if producer_span.is_valid:
            links = [Link(producer_span)]
            parent = trace.set_span_in_context(NonRecordingSpan(producer_span), Context()) if settings.parent else None
        else:
            links, parent = None, None
        size = len(payload) if isinstance(payload, bytes | str) else 0
        return settings.tracer.start_span(
            f"process {channel}",
            context=parent or Context(),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes.consumer(channel, settings.consumer_group, event, size, pattern),
        )

    @staticmethod
    def finish_open(pubsub: object) -> None:
        """End the delivery the application was processing when it comes back for more (or closes)."""
        try:
            delivery = pubsub.__dict__.pop(OPEN, None)
        except AttributeError:  # no attributes of its own: nothing was kept open on it
            return
        if delivery is not None:
            delivery.end()

    @staticmethod
    def keep_open(pubsub: object, delivery: Delivery) -> None:
        pubsub.__dict__[OPEN] = delivery
