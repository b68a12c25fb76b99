"""eventscope-redis on one client at a time, against a real redis-server: each client its own provider, source
and consumer group; producer steps after numbering; arrival and delivery steps; the current delivery's attributes.

Spans are collected with an in-memory exporter; Redis is real.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid

import pytest
import redis
import redis.asyncio
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import cloudevents_attributes as ce
from opentelemetry.semconv._incubating.attributes import messaging_attributes as ma
from opentelemetry.trace import SpanKind, StatusCode

import eventscope_redis
from eventscope_redis import RedisPubSubInstrumentor, message
from eventscope_redis.client import client_settings
from tests.processes import wait_until

pytestmark = pytest.mark.integration
WAIT_S = 5.0
INSTRUMENTOR = RedisPubSubInstrumentor()


class Service:
    """One service of a process: its provider (spans in ``spans``), its instrumented client."""

    def __init__(self, url: str, name: str, **options):
        self.spans = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.client = redis.Redis.from_url(url)
        self.settings = INSTRUMENTOR.instrument_client(self.client, tracer_provider=provider, **options)

    def of_kind(self, kind: SpanKind) -> list:
        return [span for span in self.spans.get_finished_spans() if span.kind == kind]


class Subscriber:
    """A handler-callback subscriber of an instrumented client; ``seen`` holds (payload, delivery attributes)."""

    def __init__(self, service: Service, channel: str):
        self.seen: list[tuple[bytes, eventscope_redis.Incoming | None]] = []
        self.service = service  # a client closes its connections when it is collected
        self.pubsub = service.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(**{channel: self._handle})
        self.pubsub.get_message(timeout=WAIT_S)

    def _handle(self, received: dict) -> None:
        self.seen.append((received["data"], eventscope_redis.delivery()))

    def wait(self, count: int) -> list:
        deadline = time.monotonic() + WAIT_S
        while len(self.seen) < count and time.monotonic() < deadline:
            self.pubsub.get_message(timeout=0.05)
        for _ in range(3):  # anything beyond ``count`` shows up too
            self.pubsub.get_message(timeout=0.05)
        return self.seen

    def close(self) -> None:
        self.pubsub.close()


@pytest.fixture
def channel() -> str:
    return f"test.{uuid.uuid4().hex[:8]}"


def test_two_services_in_one_process_each_trace_with_their_own_provider_source_and_group(redis_server, channel):
    orders = Service(redis_server.url, "orders", source="/orders/1")
    shipping = Service(redis_server.url, "shipping", consumer_group="shipping-v2")
    plain = redis.Redis.from_url(redis_server.url)
    subscriber = Subscriber(shipping, channel)
    orders.client.publish(channel, b'{"n":1}')
    plain.publish(channel, b"untraced")
    seen = subscriber.wait(2)
    subscriber.close()
    assert [payload for payload, _ in seen] == [b'{"n":1}', b"untraced"]
    (sent,) = orders.of_kind(SpanKind.PRODUCER)
    assert sent.attributes[ce.CLOUDEVENTS_EVENT_SOURCE] == "/orders/1" and not orders.of_kind(SpanKind.CONSUMER)
    assert not shipping.of_kind(SpanKind.PRODUCER)
    first, second = shipping.of_kind(SpanKind.CONSUMER)
    assert {
        first.attributes[ma.MESSAGING_CONSUMER_GROUP_NAME],
        second.attributes[ma.MESSAGING_CONSUMER_GROUP_NAME],
    } == {"shipping-v2"}
    assert first.parent.span_id == sent.context.span_id and first.links[0].context.span_id == sent.context.span_id
    assert ce.CLOUDEVENTS_EVENT_ID not in second.attributes  # a plain message: a delivery, no event
    assert shipping.settings.consumer_group == "shipping-v2" and client_settings(orders.client).source == "/orders/1"


def test_a_client_instrumented_on_its_own_is_traced_once_when_instrument_is_on_as_well(redis_server, channel):
    everything = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(everything))
    INSTRUMENTOR.instrument(tracer_provider=provider)
    try:
        service = Service(redis_server.url, "orders")
        subscriber = Subscriber(service, channel)
        service.client.publish(channel, b"x")
        assert [payload for payload, _ in subscriber.wait(1)] == [b"x"]
        subscriber.close()
    finally:
        INSTRUMENTOR.uninstrument()
    assert len(service.of_kind(SpanKind.PRODUCER)) == 1 and len(service.of_kind(SpanKind.CONSUMER)) == 1
    assert everything.get_finished_spans() == ()


def _skip(outgoing, proceed):
    return 0 if outgoing.attributes["sequence"] == "1" else proceed(outgoing)


def _twice(outgoing, proceed):
    proceed(outgoing)
    return proceed(outgoing)


_held: list = []


def _hold_first(outgoing, proceed):
    if outgoing.attributes["sequence"] == "1":
        _held.append((outgoing, proceed))
        return 0
    receivers = proceed(outgoing)
    while _held:
        late, send = _held.pop()
        send(late)
    return receivers


def _new_payload(outgoing, proceed):
    outgoing.payload = b'{"changed":true}'
    return proceed(outgoing)


def _ahead(outgoing, proceed):
    outgoing.clock_skew_ns = 5_000_000_000
    return proceed(outgoing)


@pytest.mark.parametrize(
    "step,published,received,producer_spans",
    [
        (_skip, 2, [(b"2", "2")], 1),  # the first number is spent: a gap before 2
        (_twice, 1, [(b"1", "1"), (b"1", "1")], 2),  # one event sent twice: same id, same sequence
        (_hold_first, 2, [(b"2", "2"), (b"1", "1")], 2),  # sent late: out of order
        (_new_payload, 1, [(b'{"changed":true}', "1")], 1),
    ],
)
def test_producer_steps_run_after_numbering(redis_server, channel, step, published, received, producer_spans):
    publisher = Service(redis_server.url, "orders", producer_steps=[step])
    subscriber = Subscriber(Service(redis_server.url, "reader"), channel)
    for n in range(1, published + 1):
        publisher.client.publish(channel, str(n).encode())
    seen = subscriber.wait(len(received))
    subscriber.close()
    assert [(payload, delivery.attributes["sequence"]) for payload, delivery in seen] == received
    assert len({delivery.id for _, delivery in seen}) == published - (step is _skip)
    assert len(publisher.of_kind(SpanKind.PRODUCER)) == producer_spans


def test_a_producer_step_that_moves_the_clock_moves_the_event_time_and_the_span(redis_server, channel):
    publisher = Service(redis_server.url, "orders", producer_steps=[_ahead])
    subscriber = Subscriber(Service(redis_server.url, "reader"), channel)
    before = time.time_ns()
    publisher.client.publish(channel, b"late")
    ((_, delivery),) = subscriber.wait(1)
    subscriber.close()
    stamped = datetime.datetime.fromisoformat(delivery.time.replace("Z", "+00:00")).timestamp() * 1e9
    (sent,) = publisher.of_kind(SpanKind.PRODUCER)
    assert stamped - before > 4e9 and sent.start_time - before > 4e9 and sent.end_time >= sent.start_time


def test_steps_run_in_order_around_the_handler_inside_one_span(redis_server, channel):
    calls: list[str] = []

    def outer(incoming, proceed):
        calls.append(f"outer {incoming.span.is_recording()}")
        return proceed(incoming)

    def retry(incoming, proceed):
        for attempt in (1, 2):
            try:
                return proceed(incoming)
            except ValueError:
                calls.append(f"retry after {attempt}")
                incoming.span.set_attribute("eventscope.attempts", attempt + 1)

    def arrival(incoming, proceed):
        calls.append(f"arrival {incoming.span.is_recording()}")
        return proceed(incoming)

    reader = Service(redis_server.url, "reader", arrival_steps=[arrival], delivery_steps=[outer, retry])
    pubsub = reader.client.pubsub(ignore_subscribe_messages=True)

    def flaky(received):
        calls.append("handler")
        if calls.count("handler") == 1:
            raise ValueError("first attempt fails")

    pubsub.subscribe(**{channel: flaky})
    pubsub.get_message(timeout=WAIT_S)
    Service(redis_server.url, "orders").client.publish(channel, b"x")
    wait_until(lambda: pubsub.get_message(timeout=0.05) is None and calls.count("handler") == 2, timeout=WAIT_S)
    pubsub.close()
    assert calls == ["arrival False", "outer True", "handler", "retry after 1", "handler"]
    (span,) = reader.of_kind(SpanKind.CONSUMER)
    assert span.attributes["eventscope.attempts"] == 2 and span.status.status_code != StatusCode.ERROR


@pytest.mark.parametrize(
    "arrival,delivered",
    [
        (lambda incoming, proceed: None, 0),  # discarded on arrival: no span, nothing handed over
        (lambda incoming, proceed: proceed(incoming), 1),
    ],
)
def test_an_arrival_step_that_does_not_proceed_discards_the_message(redis_server, channel, arrival, delivered):
    reader = Service(redis_server.url, "reader", arrival_steps=[arrival])
    pubsub = reader.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=WAIT_S)
    Service(redis_server.url, "orders").client.publish(channel, b"x")
    got = [pubsub.get_message(timeout=0.5) for _ in range(2)]
    pubsub.close()
    assert len([m for m in got if m]) == delivered == len(reader.of_kind(SpanKind.CONSUMER))


def test_a_handler_that_raises_through_the_steps_fails_its_span(redis_server, channel):
    reader = Service(redis_server.url, "reader", delivery_steps=[lambda incoming, proceed: proceed(incoming)])
    pubsub = reader.client.pubsub(ignore_subscribe_messages=True)

    def broken(received):
        raise RuntimeError("no")

    pubsub.subscribe(**{channel: broken})
    pubsub.get_message(timeout=WAIT_S)
    Service(redis_server.url, "orders").client.publish(channel, b"x")
    with pytest.raises(RuntimeError, match="no"):
        for _ in range(50):
            pubsub.get_message(timeout=0.1)
    pubsub.close()
    (span,) = reader.of_kind(SpanKind.CONSUMER)
    assert span.status.status_code == StatusCode.ERROR and span.attributes["eventscope.outcome"] == "failed"


def test_the_handler_sees_the_cloudevent_attributes_of_its_delivery(redis_server, channel):
    publisher = Service(redis_server.url, "orders", source="/orders/7")
    subscriber = Subscriber(Service(redis_server.url, "reader", consumer_group="ledger"), channel)
    chosen = {"type": "shop.order.placed", "subject": "o-1", "partitionkey": "p2", "dataschema": "urn:s:order:3"}
    with message(**chosen):
        publisher.client.publish(channel, json.dumps({"order_id": "o-1"}))
    ((payload, delivery),) = subscriber.wait(1)
    subscriber.close()
    (sent,) = publisher.of_kind(SpanKind.PRODUCER)
    assert payload == b'{"order_id": "o-1"}' and eventscope_redis.delivery() is None
    assert delivery.id == sent.attributes[ma.MESSAGING_MESSAGE_ID] and delivery.source == "/orders/7"
    assert (delivery.type, delivery.subject, delivery.partitionkey) == ("shop.order.placed", "o-1", "p2")
    assert (delivery.sequence, delivery.dataschema, delivery.schema_version) == (1, "urn:s:order:3", 3)
    assert delivery.channel == channel and delivery.group == "ledger" and delivery.pattern is None
    assert delivery.time.endswith("Z") and json.loads(delivery.wire)["id"] == delivery.id


@pytest.mark.parametrize(
    "payload,attributes_id,sequence",
    [
        (b"\xff\xfe not utf-8", None, None),
        (b"[1, 2", None, None),
        (b'{"specversion": "1.0", "id": "x", "source": "/s", "type": "t", "sequence": "-3"}', "x", None),
        (b'{"specversion": "1.0", "id": 5, "sequence": "0012"}', None, 12),
        (b'{"specversion": "1.0"' + b"[" * 5000, None, None),
    ],
)
def test_garbage_on_an_instrumented_channel_reaches_the_handler_unchanged(
    redis_server, channel, payload, attributes_id, sequence
):
    subscriber = Subscriber(Service(redis_server.url, "reader"), channel)
    redis.Redis.from_url(redis_server.url).publish(channel, payload)
    ((received, delivery),) = subscriber.wait(1)
    subscriber.close()
    assert received == payload and delivery.payload == payload
    assert delivery.id == attributes_id and delivery.sequence == sequence and delivery.schema_version is None


def _read(pubsub, count: int) -> list:
    replies: list = []
    deadline = time.monotonic() + WAIT_S
    while len(replies) < count and time.monotonic() < deadline:
        reply = pubsub.parse_response(block=False, timeout=0.05)
        if reply:
            replies.append(reply)
    return replies


def test_replies_peeked_in_a_batch_are_handled_as_if_they_had_not_been(redis_server, channel):
    publisher = Service(redis_server.url, "orders", source="/orders/3")
    reader = Service(redis_server.url, "reader")
    seen: list = []
    pubsub = reader.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(**{channel: lambda received: seen.append((received["data"], eventscope_redis.delivery()))})
    pubsub.get_message(timeout=WAIT_S)
    payloads = [b'{"n": 1}', b"plain text", b"\xff binary"]
    for payload in payloads:
        publisher.client.publish(channel, payload)
    redis.Redis.from_url(redis_server.url).publish(channel, b"[1, 2")  # not ours, not an event
    replies = _read(pubsub, 4)
    peeked = [eventscope_redis.peek(pubsub, reply) for reply in replies]
    assert [p["sequence"] for p in peeked[:3]] == ["1", "2", "3"] and peeked[3] is None
    assert eventscope_redis.peek(pubsub, [b"subscribe", channel.encode(), 1]) is None
    for reply in replies:
        pubsub.handle_message(reply, ignore_subscribe_messages=True)
    pubsub.close()
    assert [data for data, _ in seen] == [*payloads, b"[1, 2"]
    assert [delivery.attributes for _, delivery in seen] == peeked
    spans = reader.of_kind(SpanKind.CONSUMER)
    assert [span.attributes.get(ma.MESSAGING_MESSAGE_ID) for span in spans] == [*(p["id"] for p in peeked[:3]), None]


def test_peek_reads_a_reply_of_a_pubsub_that_is_not_instrumented(redis_server, channel):
    publisher = Service(redis_server.url, "orders", source="/orders/4")
    pubsub = redis.Redis.from_url(redis_server.url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=WAIT_S)
    publisher.client.publish(channel, b'{"n": 1}')
    (reply,) = _read(pubsub, 1)
    pubsub.close()
    assert eventscope_redis.peek(pubsub, reply)["source"] == "/orders/4"
    assert eventscope_redis.peek(pubsub, [b"message", channel.encode()]) is None


def test_uninstrumenting_a_client_gives_back_plain_publish(redis_server, channel):
    service = Service(redis_server.url, "orders")
    INSTRUMENTOR.uninstrument_client(service.client)
    raw = redis.Redis.from_url(redis_server.url).pubsub(ignore_subscribe_messages=True)
    raw.subscribe(channel)
    raw.get_message(timeout=WAIT_S)
    service.client.publish(channel, b"plain")
    assert raw.get_message(timeout=WAIT_S)["data"] == b"plain"
    raw.close()
    assert not service.of_kind(SpanKind.PRODUCER) and client_settings(service.client) is None


@pytest.mark.parametrize("client", [None, "not a client", redis.asyncio.Redis()])
def test_only_a_sync_redis_client_can_be_instrumented_on_its_own(client):
    with pytest.raises(TypeError, match="redis.Redis"):
        INSTRUMENTOR.instrument_client(client)
