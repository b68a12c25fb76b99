"""eventscope-redis against a real redis-server: spans, wire form and payloads for every Pub/Sub path.

Spans are collected with an in-memory exporter (opentelemetry-python's TestBase way); Redis is real.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import threading
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
from redis.cluster import RedisCluster

from eventscope_redis import RedisPubSubInstrumentor, message
from tests.processes import SingleNodeCluster, wait_until

pytestmark = pytest.mark.integration
SERVICE = "billing"
WAIT_S = 5.0


@pytest.fixture
def instrument():
    """Instrument with the given options; spans land in the returned exporter; undone after the test."""
    instrumentor = RedisPubSubInstrumentor()

    def start(**options) -> InMemorySpanExporter:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentor.instrument(tracer_provider=provider, **options)
        return exporter

    yield start
    instrumentor.uninstrument()


@pytest.fixture
def channel() -> str:
    return f"test.{uuid.uuid4().hex[:8]}"


class RawSubscriber:
    """Reads what is really on the wire: raw replies, around PubSub.handle_message (which is instrumented)."""

    def __init__(self, url: str, channel: str):
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub()
        self.pubsub.execute_command("SUBSCRIBE", channel)
        assert self.pubsub.parse_response(block=False, timeout=WAIT_S)[0] == b"subscribe"

    def next(self) -> bytes:
        reply = self.pubsub.parse_response(block=False, timeout=WAIT_S)
        assert reply is not None, "nothing arrived"
        return reply[2]

    def close(self) -> None:
        self.pubsub.reset()


def run_apart(coroutine):
    """``asyncio.run`` on a thread of its own, with this thread's context: in a whole test session the main
    thread may already run an event loop (the browser tests' Playwright), where asyncio.run refuses."""
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(context.run, asyncio.run, coroutine).result()


def subscribed(client: redis.Redis, *channels: str, pattern: str | None = None):
    """A PubSub whose subscriptions are confirmed (keep ``client`` referenced: collecting it closes its pool)."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    if channels:
        pubsub.subscribe(*channels)
    if pattern:
        pubsub.psubscribe(pattern)
    for _ in range(len(channels) + bool(pattern)):
        pubsub.get_message(timeout=WAIT_S)
    return pubsub


def next_message(pubsub) -> dict:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = pubsub.get_message(timeout=0.2)
        if found is not None:
            return found
    raise TimeoutError("no message")


def spans(exporter: InMemorySpanExporter, kind: SpanKind) -> list:
    return [span for span in exporter.get_finished_spans() if span.kind == kind]


def one(exporter: InMemorySpanExporter, kind: SpanKind):
    found = wait_until(lambda: spans(exporter, kind), timeout=WAIT_S, what=f"a {kind.name} span")
    assert len(found) == 1, [s.name for s in found]
    return found[0]


# ---- publishing: every path yields one PRODUCER span and a CloudEvent on the wire --------------------


def _publish_sync(url: str, channel: str, payload) -> None:
    redis.Redis.from_url(url).publish(channel, payload)


def _publish_pipeline(url: str, channel: str, payload) -> None:
    pipe = redis.Redis.from_url(url).pipeline()
    pipe.incr(f"{channel}:count")
    pipe.publish(channel, payload)
    assert pipe.execute()[1] == 1


def _publish_async(url: str, channel: str, payload) -> None:
    async def go():
        client = redis.asyncio.Redis.from_url(url)
        assert await client.publish(channel, payload) == 1
        await client.aclose()

    run_apart(go())


def _publish_async_pipeline(url: str, channel: str, payload) -> None:
    async def go():
        client = redis.asyncio.Redis.from_url(url)
        async with client.pipeline(transaction=False) as pipe:
            pipe.publish(channel, payload)
            assert await pipe.execute() == [1]
        await client.aclose()

    run_apart(go())


PUBLISHERS = {
    "publish": _publish_sync,
    "pipeline": _publish_pipeline,
    "asyncio publish": _publish_async,
    "asyncio pipeline": _publish_async_pipeline,
}


@pytest.mark.parametrize("path", PUBLISHERS)
@pytest.mark.parametrize(
    "payload, expected",
    [
        (b'{"order_id": "o-1"}', b'{"order_id": "o-1"}'),
        ("plain text ✓", "plain text ✓".encode()),
        (b"\xff\x00binary", b"\xff\x00binary"),
        (42, b"42"),
    ],
    ids=["json", "str", "bytes", "int"],
)
def test_publish_paths_send_a_cloudevent_in_a_producer_span(instrument, redis_server, channel, path, payload, expected):
    exporter = instrument()
    raw = RawSubscriber(redis_server.url, channel)
    PUBLISHERS[path](redis_server.url, channel, payload)
    on_wire = json.loads(raw.next())
    raw.close()
    span = one(exporter, SpanKind.PRODUCER)
    assert span.name == f"send {channel}"
    attributes = span.attributes
    assert attributes[ma.MESSAGING_SYSTEM] == "redis"
    assert attributes[ma.MESSAGING_OPERATION_TYPE] == "send"
    assert attributes[ma.MESSAGING_OPERATION_NAME] == "publish"
    assert attributes[ma.MESSAGING_DESTINATION_NAME] == channel
    assert attributes[ma.MESSAGING_MESSAGE_ID] == on_wire["id"] == attributes[ce.CLOUDEVENTS_EVENT_ID]
    assert attributes[ma.MESSAGING_MESSAGE_BODY_SIZE] == len(expected)
    assert attributes[ce.CLOUDEVENTS_EVENT_TYPE] == channel == on_wire["type"]
    assert attributes[ce.CLOUDEVENTS_EVENT_SOURCE] == on_wire["source"]
    assert on_wire["source"].startswith(f"/{SERVICE}/")
    assert attributes["eventscope.sequence"] == 1 and on_wire["sequence"] == "1"
    assert attributes["eventscope.receivers"] == 1
    assert on_wire["specversion"] == "1.0" and on_wire["id"][14] == "7"
    context = span.context
    assert on_wire["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def test_an_uninstrumented_subscriber_receives_the_cloudevent_with_the_payload_as_data(
    instrument, redis_server, channel
):
    instrument()
    raw = RawSubscriber(redis_server.url, channel)
    redis.Redis.from_url(redis_server.url).publish(channel, b'{"order_id": "o-1"}')
    on_wire = raw.next()
    raw.close()
    event = json.loads(on_wire)
    assert event["data"] == {"order_id": "o-1"} and event["datacontenttype"] == "application/json"
    assert event["specversion"] == "1.0" and event["wrappedby"] == "eventscope-redis"
    assert on_wire.endswith(b'"data":{"order_id": "o-1"}}')


def test_mixed_fleet_keeps_object_keys_where_an_old_subscriber_expects_them(instrument, redis_server, channel):
    instrument(mixed_fleet=True)
    client = redis.Redis.from_url(redis_server.url)
    raw = RawSubscriber(redis_server.url, channel)
    pubsub = subscribed(client, channel)
    client.publish(channel, b'{"order_id": "o-1", "total": 3}')
    on_wire = json.loads(raw.next())
    raw.close()
    assert on_wire["order_id"] == "o-1" and on_wire["total"] == 3 and "data" not in on_wire
    assert on_wire["specversion"] == "1.0" and on_wire["sequence"] == "1"
    assert next_message(pubsub)["data"] == b'{"order_id": "o-1", "total": 3}'
    pubsub.close()


def test_sequences_count_per_channel_and_partition_key(instrument, redis_server, channel):
    exporter = instrument()
    client = redis.Redis.from_url(redis_server.url)
    for key in ("p0", "p1", "p0", None, "p0"):
        with message(partitionkey=key, subject="o-9", type="shop.order.placed"):
            client.publish(channel, b"{}")
    client.publish(f"{channel}.other", b"{}")
    produced = [
        (s.attributes[ma.MESSAGING_DESTINATION_NAME], s.attributes.get("eventscope.partitionkey"))
        + (s.attributes["eventscope.sequence"],)
        for s in spans(exporter, SpanKind.PRODUCER)
    ]
    assert produced == [
        (channel, "p0", 1),
        (channel, "p1", 1),
        (channel, "p0", 2),
        (channel, None, 1),
        (channel, "p0", 3),
        (f"{channel}.other", None, 1),
    ]
    first = spans(exporter, SpanKind.PRODUCER)[0].attributes
    assert first[ce.CLOUDEVENTS_EVENT_TYPE] == "shop.order.placed" and first[ce.CLOUDEVENTS_EVENT_SUBJECT] == "o-9"


def test_a_resend_of_one_event_id_repeats_its_id_and_sequence(instrument, redis_server, channel):
    exporter = instrument()
    client = redis.Redis.from_url(redis_server.url)
    client.publish(channel, b"first")
    for _ in range(2):
        with message(id="order-1-placed"):
            client.publish(channel, b"again")
    client.publish(channel, b"next")
    sent = [
        (s.attributes[ma.MESSAGING_MESSAGE_ID], s.attributes["eventscope.sequence"])
        for s in spans(exporter, SpanKind.PRODUCER)
    ]
    assert sent[1] == sent[2] == ("order-1-placed", 2)
    assert sent[3][1] == 3


@pytest.mark.parametrize(
    "options, traced",
    [
        ({"include": ["orders.*"]}, {"orders.placed": True, "audit.log": False}),
        ({"exclude": ["audit.*"]}, {"orders.placed": True, "audit.log": False}),
        ({"include": ["orders.*", "audit.*"], "exclude": ["audit.*"]}, {"orders.placed": True, "audit.log": False}),
        ({}, {"orders.placed": True, "audit.log": True}),
    ],
    ids=["include", "exclude", "exclude wins", "everything by default"],
)
def test_channel_patterns_choose_what_is_traced_and_wrapped(instrument, redis_server, options, traced):
    exporter = instrument(**options)
    client = redis.Redis.from_url(redis_server.url)
    suffix = uuid.uuid4().hex[:6]
    for name, expected in traced.items():
        raw = RawSubscriber(redis_server.url, f"{name}.{suffix}")
        client.publish(f"{name}.{suffix}", b"payload")
        assert (raw.next() != b"payload") is expected
        raw.close()
    names = {s.attributes[ma.MESSAGING_DESTINATION_NAME] for s in spans(exporter, SpanKind.PRODUCER)}
    assert names == {f"{name}.{suffix}" for name, expected in traced.items() if expected}


def test_uninstrument_restores_plain_redis_py(redis_server, channel):
    instrumentor = RedisPubSubInstrumentor()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor.instrument(tracer_provider=provider)
    instrumentor.uninstrument()
    raw = RawSubscriber(redis_server.url, channel)
    redis.Redis.from_url(redis_server.url).publish(channel, b"plain")
    assert raw.next() == b"plain"
    raw.close()
    assert exporter.get_finished_spans() == ()


# ---- receiving: every path yields one CONSUMER span per delivery, and the exact payload -------------


def _receive_get_message(url: str, channel: str, publish) -> tuple[object, list]:
    client = redis.Redis.from_url(url)
    pubsub = subscribed(client, channel)
    publish()
    data = next_message(pubsub)["data"]
    pubsub.get_message(timeout=0.05)  # asking for the next message ends the previous delivery
    pubsub.close()
    return data, [client]


def _receive_listen(url: str, channel: str, publish) -> tuple[object, list]:
    client = redis.Redis.from_url(url)
    pubsub = subscribed(client, channel)
    publish()
    for found in pubsub.listen():
        data = found["data"]
        break
    pubsub.close()
    return data, [client]


def _receive_pattern(url: str, channel: str, publish) -> tuple[object, list]:
    client = redis.Redis.from_url(url)
    pubsub = subscribed(client, pattern=channel[:-2] + "*")
    publish()
    found = next_message(pubsub)
    assert found["type"] == "pmessage"
    pubsub.close()
    return found["data"], [client]


def _receive_sharded(url: str, channel: str, publish) -> tuple[object, list]:
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.ssubscribe(channel)
    pubsub.get_sharded_message(timeout=WAIT_S)
    publish(sharded=True)
    found = next_message(pubsub)
    assert found["type"] == "smessage"
    pubsub.close()
    return found["data"], [client]


def _receive_run_in_thread(url: str, channel: str, publish) -> tuple[object, list]:
    got: list = []
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(**{channel: lambda m: got.append(m["data"])})
    worker = pubsub.run_in_thread(sleep_time=0.05, daemon=True)
    wait_until(lambda: pubsub.subscribed, what="subscribed")
    time.sleep(0.1)
    publish()
    wait_until(lambda: got, timeout=WAIT_S, what="the handler ran")
    worker.stop()
    worker.join(WAIT_S)
    return got[0], [client]


def _receive_async(mode: str):
    def receive(url: str, channel: str, publish) -> tuple[object, list]:
        async def go():
            client = redis.asyncio.Redis.from_url(url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            got: list = []
            if mode == "run":
                await pubsub.subscribe(**{channel: lambda m: got.append(m["data"])})
            else:
                await pubsub.subscribe(channel)
            await pubsub.get_message(timeout=WAIT_S) if mode != "run" else None
            await asyncio.to_thread(publish)
            if mode == "get_message":
                while not got:
                    found = await pubsub.get_message(timeout=1.0)
                    if found:
                        got.append(found["data"])
                await pubsub.get_message(timeout=0.05)
            elif mode == "listen":
                async for found in pubsub.listen():
                    got.append(found["data"])
                    break
            else:
                task = asyncio.create_task(pubsub.run(poll_timeout=0.05))
                while not got:
                    await asyncio.sleep(0.02)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await pubsub.aclose()
            await client.aclose()
            return got[0]

        return run_apart(go()), []

    return receive


RECEIVERS = {
    "get_message": _receive_get_message,
    "listen": _receive_listen,
    "pattern": _receive_pattern,
    "sharded": _receive_sharded,
    "run_in_thread handler": _receive_run_in_thread,
    "asyncio get_message": _receive_async("get_message"),
    "asyncio listen": _receive_async("listen"),
    "asyncio run handler": _receive_async("run"),
}


@pytest.mark.parametrize("path", RECEIVERS)
@pytest.mark.parametrize(
    "payload", [b'{"order_id": "o-1", "n": 1.50}', b"text", b"\x00\xffbinary"], ids=["json", "text", "bytes"]
)
def test_receive_paths_process_each_delivery_in_a_consumer_span(instrument, redis_server, path, payload):
    exporter = instrument()
    channel = f"recv.{uuid.uuid4().hex[:6]}.x"
    client = redis.Redis.from_url(redis_server.url)

    def publish(sharded: bool = False) -> None:
        (client.spublish if sharded else client.publish)(channel, payload)

    data, _ = RECEIVERS[path](redis_server.url, channel, publish)
    assert data == payload
    producer = one(exporter, SpanKind.PRODUCER)
    consumer = one(exporter, SpanKind.CONSUMER)
    assert consumer.name == f"process {channel}"
    attributes = consumer.attributes
    assert attributes[ma.MESSAGING_OPERATION_TYPE] == "process"
    assert attributes[ma.MESSAGING_CONSUMER_GROUP_NAME] == SERVICE
    assert attributes[ma.MESSAGING_DESTINATION_NAME] == channel
    assert attributes[ma.MESSAGING_MESSAGE_ID] == producer.attributes[ma.MESSAGING_MESSAGE_ID]
    assert attributes["eventscope.sequence"] == 1
    assert attributes["eventscope.outcome"] == "processed" and attributes["eventscope.attempts"] == 1
    assert attributes[ma.MESSAGING_MESSAGE_BODY_SIZE] == len(payload)
    assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent.span_id == producer.context.span_id
    if path == "pattern":
        assert attributes[ma.MESSAGING_DESTINATION_TEMPLATE] == channel[:-2] + "*"
    if path == "sharded":
        assert producer.attributes[ma.MESSAGING_OPERATION_NAME] == "spublish"


def test_decode_responses_gives_back_the_same_str(instrument, redis_server, channel):
    instrument()
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    pubsub = subscribed(client, channel)
    client.publish(channel, "grüße")
    assert next_message(pubsub)["data"] == "grüße"
    pubsub.close()


def test_parent_false_starts_a_new_trace_that_keeps_the_link(instrument, redis_server, channel):
    exporter = instrument(parent=False, consumer_group="audit")
    client = redis.Redis.from_url(redis_server.url)
    data, _ = _receive_get_message(redis_server.url, channel, lambda: client.publish(channel, b"x"))
    producer, consumer = one(exporter, SpanKind.PRODUCER), one(exporter, SpanKind.CONSUMER)
    assert consumer.parent is None
    assert consumer.context.trace_id != producer.context.trace_id
    assert consumer.links[0].context.span_id == producer.context.span_id
    assert consumer.attributes[ma.MESSAGING_CONSUMER_GROUP_NAME] == "audit"


def test_a_handler_that_raises_fails_its_delivery(instrument, redis_server, channel):
    exporter = instrument()
    client = redis.Redis.from_url(redis_server.url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)

    def handler(found):
        raise ValueError("bad order")

    pubsub.subscribe(**{channel: handler})
    pubsub.get_message(timeout=WAIT_S)
    client.publish(channel, b"x")
    with pytest.raises(ValueError):
        next_message(pubsub)
    pubsub.close()
    consumer = one(exporter, SpanKind.CONSUMER)
    assert consumer.status.status_code == StatusCode.ERROR
    assert consumer.attributes["eventscope.outcome"] == "failed"
    assert consumer.events[0].name == "exception"


def test_work_done_while_processing_a_returned_message_joins_its_trace(instrument, redis_server, channel):
    exporter = instrument()
    client = redis.Redis.from_url(redis_server.url)
    pubsub = subscribed(client, channel)
    client.publish(channel, b"x")
    next_message(pubsub)
    client.publish(f"{channel}.next", b"caused by x")  # published while processing: a child of the delivery
    pubsub.close()
    first, caused = spans(exporter, SpanKind.PRODUCER)
    consumer = one(exporter, SpanKind.CONSUMER)
    assert caused.parent.span_id == consumer.context.span_id
    assert caused.context.trace_id == first.context.trace_id


GARBAGE = [b"", b"{", b'{"data":1,"wrappedby":"eventscope-redis"', b"\xff\xfe", b'{"specversion":"1.0"}']


@pytest.mark.parametrize("payload", GARBAGE)
def test_garbage_from_an_uninstrumented_publisher_reaches_the_app_unchanged(instrument, redis_server, channel, payload):
    exporter = instrument()
    plain = redis.Redis.from_url(redis_server.url)
    pubsub = subscribed(plain, channel)
    conn = plain.connection_pool.get_connection()
    conn.send_command("PUBLISH", channel, payload)  # around the instrumented publish
    conn.read_response()
    plain.connection_pool.release(conn)
    assert next_message(pubsub)["data"] == payload
    pubsub.close()
    consumer = one(exporter, SpanKind.CONSUMER)
    assert consumer.links == () or not consumer.links
    assert ma.MESSAGING_MESSAGE_ID not in consumer.attributes


def test_a_cloudevent_from_another_producer_is_traced_and_left_as_it_was(instrument, redis_server, channel):
    exporter = instrument()
    plain = redis.Redis.from_url(redis_server.url)
    pubsub = subscribed(plain, channel)
    event = {"specversion": "1.0", "id": "e-7", "source": "/other/1", "type": "t", "sequence": "7", "data": {}}
    payload = json.dumps(event).encode()
    conn = plain.connection_pool.get_connection()
    conn.send_command("PUBLISH", channel, payload)
    conn.read_response()
    plain.connection_pool.release(conn)
    assert next_message(pubsub)["data"] == payload
    pubsub.close()
    consumer = one(exporter, SpanKind.CONSUMER)
    assert consumer.attributes[ma.MESSAGING_MESSAGE_ID] == "e-7"
    assert consumer.attributes["eventscope.sequence"] == 7


def test_threads_publishing_at_once_number_their_stream_without_gaps(instrument, redis_server, channel):
    exporter = instrument()
    client = redis.Redis.from_url(redis_server.url)
    threads = [threading.Thread(target=lambda: [client.publish(channel, b"x") for _ in range(25)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sequences = sorted(s.attributes["eventscope.sequence"] for s in spans(exporter, SpanKind.PRODUCER))
    assert sequences == list(range(1, 101))


@pytest.fixture(scope="module")
def cluster():
    node = SingleNodeCluster()
    yield node
    node.stop()


@pytest.mark.parametrize("sharded", [True, False], ids=["spublish/ssubscribe", "publish/subscribe"])
def test_redis_cluster_clients_are_traced_like_the_others(instrument, cluster, sharded):
    exporter = instrument()
    client = RedisCluster(host="127.0.0.1", port=cluster.port)
    channel = f"cl.{uuid.uuid4().hex[:6]}"
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    read = pubsub.get_sharded_message if sharded else pubsub.get_message
    (pubsub.ssubscribe if sharded else pubsub.subscribe)(channel)
    read(timeout=1.0)
    assert (client.spublish if sharded else client.publish)(channel, b'{"a": 1}') == 1
    found = wait_until(lambda: read(timeout=0.2), timeout=WAIT_S, what="the message")
    read(timeout=0.05)
    pubsub.close()
    client.close()
    assert found["data"] == b'{"a": 1}'
    producer, consumer = one(exporter, SpanKind.PRODUCER), one(exporter, SpanKind.CONSUMER)
    assert producer.attributes[ma.MESSAGING_OPERATION_NAME] == ("spublish" if sharded else "publish")
    assert producer.attributes["eventscope.receivers"] == 1
    assert consumer.name == f"process {channel}"
    assert consumer.links[0].context.span_id == producer.context.span_id


@pytest.mark.parametrize(
    "channel_name, payload, received",
    [
        (b"bytes.channel", b"x", b"x"),
        ("str.channel", memoryview(b"view"), b"view"),
        ("str.channel", 1.5, b"1.5"),
        ("str.channel", "", b""),
        ("sp ace\nchannel", b"x", b"x"),
    ],
    ids=["bytes channel", "memoryview", "float", "empty str", "odd channel name"],
)
def test_unusual_but_valid_publishes_arrive_unchanged(instrument, redis_server, channel_name, payload, received):
    exporter = instrument()
    client = redis.Redis.from_url(redis_server.url)
    name = channel_name.decode() if isinstance(channel_name, bytes) else channel_name
    pubsub = subscribed(client, name)
    assert client.publish(channel_name, payload) == 1
    assert next_message(pubsub)["data"] == received
    pubsub.close()
    assert one(exporter, SpanKind.PRODUCER).name == f"send {name}"


@pytest.mark.parametrize("payload", [None, True, object()], ids=["None", "bool", "object"])
def test_publishes_redis_py_refuses_fail_as_they_would_without_the_library(instrument, redis_server, payload):
    exporter = instrument()
    with pytest.raises(redis.DataError):
        redis.Redis.from_url(redis_server.url).publish("refused", payload)
    assert exporter.get_finished_spans() == ()
