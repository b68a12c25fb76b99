"""Normalisation: each convention version's and each instrumentation's attribute set gives the canonical facts.

The attribute sets are those the instrumentations set, read from their source (opentelemetry-python-contrib
at 0.66: ``instrumentation/opentelemetry-instrumentation-<name>/src/...``; opentelemetry-js-contrib's
``packages/instrumentation-amqplib/src/utils.ts``), and the names each convention version defined
(semantic-conventions ``schemas/``). The doc's table is the code's table.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from collectors.analyses import duplicates, event_life, flow, overview, report
from collectors.analyses.filters import Filters
from collectors.ingest import normalize
from collectors.ingest.otlp import SPAN_COLUMNS, decode_protobuf
from collectors.storage import pairing
from collectors.storage.store import SCHEMA, Store

ROOT = Path(__file__).resolve().parents[2]
CELERY_DELIVERY_INFO = "{'exchange': '', 'routing_key': 'celery', 'priority': 0, 'redelivered': False}"

CASES = {
    # sample shop / eventscope-redis: current names plus CloudEvents and ours
    "eventscope-redis consumer": (
        {"messaging.system": "redis", "messaging.operation.type": "process",
         "messaging.destination.name": "shop.orders", "messaging.message.id": "e1", "cloudevents.event_id": "e1",
         "cloudevents.event_source": "/s/1",
         "cloudevents.event_type": "shop.order.placed", "cloudevents.event_subject": "o-1", "eventscope.sequence": 4,
         "eventscope.partitionkey": "p2", "messaging.consumer.group.name": "inventory",
         "eventscope.outcome": "processed", "eventscope.attempts": 1},
        {"system": "redis", "operation": "process", "destination": "shop.orders", "message_id": "e1",
         "event_source": "/s/1", "event_type": "shop.order.placed", "event_subject": "o-1", "sequence": 4,
         "partition": "p2", "consumer_group": "inventory", "outcome": "processed", "attempts": 1},
    ),
    # semconv <= 1.16 names: pika 0.44 and 0.66 (pika/utils.py _enrich_span), aio-pika (span_builder.py)
    "pika publish": (
        {"messaging.system": "rabbitmq", "messaging.temp_destination": True, "messaging.destination": "orders",
         "messaging.message.id": "m-1", "messaging.conversation_id": "c-1", "net.peer.name": "localhost",
         "net.peer.port": 5672},
        {"system": "rabbitmq", "destination": "orders", "message_id": "m-1", "conversation_id": "c-1"},
    ),
    "pika receive": (
        {"messaging.system": "rabbitmq", "messaging.operation": "receive", "messaging.destination": "orders",
         "messaging.message.id": "m-1"},
        {"system": "rabbitmq", "operation": "receive", "destination": "orders", "message_id": "m-1"},
    ),
    # amqplib (js): the exchange is the destination, '' for the default exchange, whose routing key names the queue
    "amqplib consume on the default exchange": (
        {"messaging.protocol": "AMQP", "messaging.system": "rabbitmq", "messaging.destination": "",
         "messaging.destination_kind": "topic", "messaging.rabbitmq.routing_key": "jobs",
         "messaging.operation": "process", "messaging.message_id": "m-7", "messaging.conversation_id": "c-7"},
        {"system": "rabbitmq", "operation": "process", "destination": "jobs", "routing_key": "jobs",
         "message_id": "m-7", "conversation_id": "c-7"},
    ),
    # celery/utils.py set_attributes_from_context, celery/__init__.py _trace_prerun/_trace_postrun
    "celery run, first attempt retried": (
        {"celery.action": "run", "celery.delivery_info": CELERY_DELIVERY_INFO, "messaging.destination": "celery",
         "celery.hostname": "celery@w1", "messaging.message.id": "task-1", "celery.state": "RETRY",
         "celery.task_name": "shop.charge"},
        {"system": "celery", "operation": "process", "destination": "celery", "message_id": "task-1",
         "outcome": "retried", "event_type": "shop.charge", "delivery_count": 1},
    ),
    "celery run, second attempt succeeded": (
        {"celery.action": "run", "celery.delivery_info": CELERY_DELIVERY_INFO, "messaging.destination": "celery",
         "messaging.message.id": "task-1", "celery.retries": 1, "celery.state": "SUCCESS",
         "celery.task_name": "shop.charge"},
        {"system": "celery", "operation": "process", "destination": "celery", "message_id": "task-1",
         "outcome": "processed", "event_type": "shop.charge", "delivery_count": 2, "redelivered": True},
    ),
    "celery run redelivered by the broker": (
        {"celery.action": "run", "celery.delivery_info": CELERY_DELIVERY_INFO.replace("False", "True"),
         "messaging.destination": "celery", "messaging.message.id": "task-2", "celery.state": "FAILURE",
         "celery.task_name": "shop.charge"},
        {"system": "celery", "operation": "process", "destination": "celery", "message_id": "task-2",
         "outcome": "failed", "event_type": "shop.charge", "delivery_count": 1, "redelivered": True},
    ),
    "celery apply_async": (
        {"celery.action": "apply_async", "messaging.message.id": "task-1", "celery.task_name": "shop.charge",
         "messaging.destination": "celery", "messaging.destination_kind": "queue"},
        {"system": "celery", "operation": "send", "destination": "celery", "message_id": "task-1",
         "event_type": "shop.charge"},
    ),
    # kafka-python (kafka/utils.py _enrich_span): no id, no offset
    "kafka-python receive": (
        {"messaging.system": "kafka", "messaging.destination": "orders", "messaging.kafka.partition": 0,
         "messaging.url": '["localhost:9092"]'},
        {"system": "kafka", "destination": "orders", "partition": "0"},
    ),
    # confluent-kafka (confluent_kafka/utils.py _enrich_span): the offset only inside the message id
    "confluent-kafka process": (
        {"messaging.system": "kafka", "messaging.destination": "orders", "messaging.kafka.partition": 2,
         "messaging.destination_kind": "queue", "messaging.operation": "process", "server.address": "b1",
         "messaging.message.id": "orders.2.41"},
        {"system": "kafka", "operation": "process", "destination": "orders", "partition": "2", "sequence": 41,
         "message_id": "orders.2.41"},
    ),
    # aiokafka (aiokafka/utils.py _enrich_getone_span): current names, the 1.16-1.26 offset
    "aiokafka getone": (
        {"messaging.system": "kafka", "server.address": '["b1"]', "messaging.client.id": "c1",
         "messaging.destination.name": "orders", "messaging.destination.partition.id": "1",
         "messaging.kafka.message.key": "k", "messaging.consumer.group.name": "billing",
         "messaging.operation.name": "receive", "messaging.operation.type": "receive",
         "messaging.kafka.message.offset": 7, "messaging.message.id": "orders.1.7"},
        {"system": "kafka", "operation": "receive", "destination": "orders", "partition": "1", "sequence": 7,
         "consumer_group": "billing", "message_id": "orders.1.7"},
    ),
    # semconv 1.17-1.24 and 1.25-1.26 names
    "semconv 1.17 kafka": (
        {"messaging.system": "kafka", "messaging.destination.name": "t", "messaging.kafka.destination.partition": 3,
         "messaging.kafka.consumer.group": "g", "messaging.kafka.message.offset": 9, "messaging.operation": "process",
         "messaging.message.conversation_id": "c"},
        {"system": "kafka", "destination": "t", "partition": "3", "consumer_group": "g", "sequence": 9,
         "operation": "process", "conversation_id": "c"},
    ),
    "semconv 1.16 kafka": (
        {"messaging.system": "kafka", "messaging.destination": "t", "messaging.kafka.partition": 3,
         "messaging.kafka.consumer_group": "g", "messaging.operation": "receive", "messaging.message_id": "x"},
        {"system": "kafka", "destination": "t", "partition": "3", "consumer_group": "g", "operation": "receive",
         "message_id": "x"},
    ),
    "semconv 1.27 kafka": (
        {"messaging.system": "kafka", "messaging.destination.name": "t", "messaging.destination.partition.id": "0",
         "messaging.consumer.group.name": "g", "messaging.kafka.offset": 12, "messaging.operation.type": "deliver"},
        {"system": "kafka", "destination": "t", "partition": "0", "consumer_group": "g", "sequence": 12,
         "operation": "process"},
    ),
    "semconv 1.26 rocketmq and eventhubs groups": (
        {"messaging.system": "rocketmq", "messaging.destination.name": "t", "messaging.rocketmq.client_group": "rg",
         "messaging.operation.type": "publish"},
        {"system": "rocketmq", "destination": "t", "consumer_group": "rg", "operation": "send"},
    ),
    "servicebus abandoned third delivery": (
        {"messaging.system": "servicebus", "messaging.destination.name": "q", "messaging.operation.type": "settle",
         "messaging.servicebus.message.delivery_count": 3, "messaging.servicebus.disposition_status": "abandon"},
        {"system": "servicebus", "destination": "q", "operation": "settle", "delivery_count": 3,
         "outcome": "retried", "redelivered": True},
    ),
    "gcp pubsub first delivery": (
        {"messaging.system": "gcp_pubsub", "messaging.destination.name": "sub", "messaging.operation.type": "receive",
         "messaging.gcp_pubsub.message.delivery_attempt": 1},
        {"system": "gcp_pubsub", "destination": "sub", "operation": "receive", "delivery_count": 1},
    ),
    # botocore extensions/sqs.py and sns.py (CLIENT spans for SQS; rpc.method gives the operation)
    "botocore sqs send": (
        {"rpc.system": "aws-api", "rpc.service": "SQS", "rpc.method": "SendMessage", "aws.region": "us-east-1",
         "aws.queue_url": "http://localhost:5000/1/q", "messaging.system": "aws.sqs",
         "messaging.url": "http://localhost:5000/1/q", "messaging.destination": "q", "messaging.message.id": "a-1"},
        {"system": "aws_sqs", "operation": "send", "destination": "q", "message_id": "a-1"},
    ),
    "botocore sqs receive": (
        {"rpc.system": "aws-api", "rpc.service": "SQS", "rpc.method": "ReceiveMessage", "messaging.system": "aws.sqs",
         "messaging.destination": "q", "messaging.message.id": "a-1"},
        {"system": "aws_sqs", "operation": "receive", "destination": "q", "message_id": "a-1"},
    ),
    "botocore sns publish": (
        {"rpc.system": "aws-api", "rpc.service": "SNS", "rpc.method": "Publish", "messaging.system": "aws.sns",
         "messaging.destination_kind": "topic", "messaging.destination": "arn:aws:sns:us-east-1:0:orders",
         "messaging.destination.name": "arn:aws:sns:us-east-1:0:orders",
         "aws.sns.topic.arn": "arn:aws:sns:us-east-1:0:orders"},
        {"system": "aws.sns", "operation": "send", "destination": "orders"},
    ),
    "an SNS destination that is no topic ARN stays as it is": (
        {"messaging.system": "aws.sns", "messaging.destination.name": "arn:aws:sns:us-east-1:0:"},
        {"system": "aws.sns", "destination": "arn:aws:sns:us-east-1:0:"},
    ),
    "a topic ARN of another system is not read as SNS": (
        {"messaging.system": "kafka", "messaging.destination.name": "arn:aws:sns:us-east-1:0:orders"},
        {"system": "kafka", "destination": "arn:aws:sns:us-east-1:0:orders"},
    ),
    # opentelemetry-js-contrib redis-common defaultDbStatementSerializer (ioredis, redis): PUBLISH keeps its channel
    "node redis publish names its channel": (
        {"db.system": "redis", "db.statement": "publish orders.placed [1 other arguments]", "net.peer.port": 6379},
        {"system": "redis", "operation": "send", "destination": "orders.placed"},
    ),
    "node redis spublish, a channel with spaces, the newer names": (
        {"db.system.name": "redis", "db.query.text": "SPUBLISH eu orders [1 other arguments]"},
        {"system": "redis", "operation": "send", "destination": "eu orders"},
    ),
    # opentelemetry-instrumentation-redis (Python) util._format_command_args masks every argument
    "python redis publish is masked: no channel, not a publish": (
        {"db.system": "redis", "db.statement": "PUBLISH ? ?", "db.redis.args_length": 3},
        {},
    ),
    # up to 0.39b0 the arguments themselves, joined by spaces: where the channel ends cannot be told
    "python redis publish before the masking is not read either": (
        {"db.system": "redis", "db.statement": 'PUBLISH eu orders {"id": 1}', "db.redis.args_length": 3},
        {},
    ),
    "another database's statement is not read": (
        {"db.system": "postgresql", "db.statement": "PUBLISH orders [1 other arguments]"},
        {},
    ),
    "a redis statement that is not a publish, or not text": (
        {"db.system": "redis", "db.statement": 5, "db.query.text": "SET k [1 other arguments]"},
        {},
    ),
    "garbage values count as absent": (
        {"messaging.system": "", "messaging.destination.name": "", "messaging.message.id": None,
         "eventscope.sequence": "x", "messaging.operation.type": "bogus", "celery.state": 5,
         "messaging.servicebus.message.delivery_count": True, "eventscope.attempts": "many",
         "eventscope.schema.version": "2"},
        {"schema_version": 2},
    ),
    # a number the store cannot hold is kept as it is, so that its span is rejected with the reason
    # (partial success, collectors/storage/store.py row_checker) rather than stored with the fact silently gone
    "numbers out of the store's range are kept for the row check": (
        {"eventscope.attempts": "9" * 30},
        {"attempts": int("9" * 30)},
    ),
}  # fmt: skip


def _facts(expected: dict) -> tuple:
    return tuple(expected.get(fact) for fact, _ in normalize.FACTS)


@pytest.mark.parametrize("name", CASES)
def test_each_attribute_set_gives_its_canonical_facts(name):
    attrs, expected = CASES[name]
    assert dict(zip(normalize.COLUMNS, normalize.facts(attrs))) == dict(zip(normalize.COLUMNS, _facts(expected)))


@pytest.mark.parametrize("name", CASES)
def test_the_fast_path_gives_what_the_full_recipe_gives(name):
    attrs = CASES[name][0]
    table = normalize.plan(None)
    first = normalize.facts(attrs, table)  # learns the recipe
    steps, _ = table.recipes[tuple(attrs)]
    assert normalize.facts(attrs, table) == first == normalize._slow(attrs, steps)


def test_the_convention_version_a_span_declares_decides_between_old_and_new_names():
    attrs = {"messaging.destination": "old", "messaging.destination.name": "new", "messaging.message_id": "a",
             "messaging.message.id": "b"}  # fmt: skip
    at = normalize.COLUMNS.index("MsgDestination"), normalize.COLUMNS.index("MsgMessageId")
    assert [normalize.facts(attrs)[i] for i in at] == ["new", "b"]
    old = normalize.plan_for("https://opentelemetry.io/schemas/1.11.0")
    assert [normalize.facts(attrs, old)[i] for i in at] == ["old", "a"]
    assert normalize.plan_for("https://opentelemetry.io/schemas/1.26.0") is normalize.plan_for(
        "https://opentelemetry.io/schemas/1.26.0"
    )
    assert normalize.schema_version("not a url") is None
    assert normalize.facts({}) == normalize.NO_FACTS


def test_the_decoder_reads_the_scope_schema_url():
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "pika-app"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    old = provider.get_tracer(
        "opentelemetry.instrumentation.pika", "0.44b0", schema_url="https://opentelemetry.io/schemas/1.11.0"
    )
    new = provider.get_tracer("other")
    both = {"messaging.destination": "orders", "messaging.destination.name": "renamed"}
    with old.start_as_current_span("orders send", kind=SpanKind.PRODUCER, attributes=both):
        pass
    with new.start_as_current_span("renamed send", kind=SpanKind.PRODUCER, attributes=both):
        pass
    rows = decode_protobuf(encode_spans(memory.get_finished_spans()).SerializeToString())
    names = {row[SPAN_COLUMNS.index("SpanName")]: row[SPAN_COLUMNS.index("MsgDestination")] for row in rows}
    assert names == {"orders send": "orders", "renamed send": "renamed"}


PIKA_SCOPE = "opentelemetry.instrumentation.pika.pika_instrumentor"  # pika names its tracer after the module
AIO_PIKA_SCOPE = "opentelemetry.instrumentation.aio_pika"
PEER = {"messaging.system": "rabbitmq", "net.peer.name": "localhost", "net.peer.port": 5672}


@pytest.mark.parametrize(
    "scope,name,attributes,destination,routing_key",
    [
        # pika 0.44 (pika/utils.py _get_span): the name holds exchange-or-routing-key, the attribute the "task name"
        (PIKA_SCOPE, "mail receive", {"messaging.destination": "ctag1.5b2e", "messaging.operation": "receive"},
         "mail", None),
        (PIKA_SCOPE, "mail send", {"messaging.destination": "(temporary)", "messaging.temp_destination": True},
         "mail", None),
        (PIKA_SCOPE, "audit send", {"messaging.destination": "shop.order.placed", "messaging.temp_destination": True},
         "audit", None),  # a message with a `type` names it instead, and a named exchange is the destination
        # pika 0.66: the attribute and the name agree
        (PIKA_SCOPE, "mail receive", {"messaging.destination": "mail", "messaging.operation": "receive"}, "mail", None),
        # aio-pika (publish_decorator.py, callback_decorator.py)
        (AIO_PIKA_SCOPE, ",orders send", {"messaging.destination": ",orders", "messaging.temp_destination": True},
         "orders", "orders"),
        (AIO_PIKA_SCOPE, "shop,orders.eu send", {"messaging.destination": "shop,orders.eu",
                                                 "messaging.temp_destination": True}, "shop", "orders.eu"),
        (AIO_PIKA_SCOPE, "orders receive", {"messaging.destination": "orders", "messaging.operation": "receive"},
         "orders", None),
        # the same attributes from another instrumentation are read as they are
        ("other", ",orders send", {"messaging.destination": ",orders", "messaging.temp_destination": True},
         ",orders", None),
        ("other", "mail receive", {"messaging.destination": "ctag1.5b2e"}, "ctag1.5b2e", None),
        # names that do not follow the pattern leave the attribute in place
        (PIKA_SCOPE, "receive", {"messaging.destination": "mail"}, "mail", None),
        (PIKA_SCOPE, "", {"messaging.destination": "mail"}, "mail", None),
        (PIKA_SCOPE, " send", {"messaging.destination": "mail"}, "mail", None),
        (PIKA_SCOPE, "mail\x00 ü send", {"messaging.destination": "ctag1"}, "mail\x00 ü", None),
        (AIO_PIKA_SCOPE, "x send", {"messaging.destination": ",,", "messaging.temp_destination": True}, ",", ","),
        (AIO_PIKA_SCOPE, ", send", {"messaging.destination": ",", "messaging.temp_destination": True}, None, None),
    ],
)  # fmt: skip
def test_pika_and_aio_pika_destinations_are_the_channel_their_deliveries_name(
    scope, name, attributes, destination, routing_key
):
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "app"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(scope, "0.44b0", schema_url="https://opentelemetry.io/schemas/1.11.0")
    with tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=PEER | attributes):
        pass
    (row,) = decode_protobuf(encode_spans(memory.get_finished_spans()).SerializeToString())
    found = (row[SPAN_COLUMNS.index("MsgDestination")], row[SPAN_COLUMNS.index("MsgRoutingKey")])
    assert found == (destination, routing_key)


def test_an_instrumentation_is_known_by_its_scope_or_the_package_above_it():
    assert normalize.quirk_for(PIKA_SCOPE) is normalize.quirk_for("opentelemetry.instrumentation.pika")
    assert normalize.quirk_for(AIO_PIKA_SCOPE) is not None
    assert [normalize.quirk_for(s) for s in ("", "opentelemetry", "opentelemetry.instrumentation.pikax", "x.y")] == [
        None
    ] * 4


def test_the_doc_holds_the_code_table():
    assert normalize.markdown() in (ROOT / "docs" / "conventions.md").read_text()


def test_every_name_has_a_known_converter_and_fact():
    facts = {fact for fact, _ in normalize.FACTS}
    assert all(n.fact in facts and n.convert in normalize.CONVERTERS for n in normalize.NAMES)
    assert tuple(SPAN_COLUMNS[-len(normalize.COLUMNS) :]) == normalize.COLUMNS


MS = 1_000_000


def _span(span: str, kind: str, t: int, **fields) -> tuple:
    row = {"Timestamp": t, "TraceId": "t1", "SpanId": span, "ParentSpanId": "", "TraceState": "",
           "SpanName": "orders send", "SpanKind": kind, "ServiceName": "shop", "ResourceAttributes": "{}",
           "ScopeName": "opentelemetry.instrumentation.pika", "ScopeVersion": "0.66b0", "SpanAttributes": "{}",
           "Duration": 2 * MS, "StatusCode": "Unset", "StatusMessage": "", "Events": "[]", "Links": "[]",
           "MsgSystem": "rabbitmq", "MsgDestination": "orders", "MsgMessageId": "m-1", **fields}  # fmt: skip
    return tuple(row.get(column) for column in SPAN_COLUMNS)


def test_two_nested_producer_spans_of_one_message_are_one_publish():
    """pika 0.66: BlockingChannel.basic_publish and the channel's own basic_publish each start a PRODUCER span."""
    conn = duckdb.connect()
    conn.execute(SCHEMA)
    rows = [
        _span("outer", "Producer", 100 * MS, Duration=3 * MS),
        _span("inner", "Producer", 101 * MS, ParentSpanId="outer", Duration=1 * MS),
        _span("recv", "Consumer", 105 * MS, ParentSpanId="inner", SpanName="orders receive", ServiceName="worker"),
        _span("other", "Producer", 200 * MS, MsgMessageId="m-2"),  # a publish of its own, alone
    ]
    conn.executemany(f"INSERT INTO otel_traces VALUES ({', '.join('?' * len(SPAN_COLUMNS))})", rows)
    pairing.rebuild(conn)
    graph = flow.flow(conn, Filters())
    publish = [e for e in graph["edges"] if e["kind"] == "publish"]
    deliver = [e for e in graph["edges"] if e["kind"] == "deliver"]
    assert [e["count"] for e in publish] == [2]
    assert deliver[0]["count"] == 1 and deliver[0]["p95_ms"] == pytest.approx(4.0)  # from the inner span's start
    life = event_life.event(conn, "m-1")
    assert [p["span_id"] for p in life["published"]] == ["inner"]
    assert life["verdict"].startswith("Published once by shop.")


def _analyses(rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute(SCHEMA)
    conn.executemany(f"INSERT INTO otel_traces VALUES ({', '.join('?' * len(SPAN_COLUMNS))})", rows)
    pairing.rebuild(conn)
    return conn


def test_two_sibling_consumer_spans_of_one_delivery_are_one_delivery():
    """pika 0.44 wraps a consumer's callback again at each basic_consume: two CONSUMER spans per delivery, both
    children of the producer span, the one within the other; a failure puts both in error."""
    recv = {"SpanName": "orders receive", "ServiceName": "worker", "ParentSpanId": "p1"}
    rows = [
        _span("p1", "Producer", 100 * MS),
        _span("outer", "Consumer", 105 * MS, Duration=4 * MS, **recv),
        _span("inner", "Consumer", 106 * MS, Duration=2 * MS, **recv),
        _span("p2", "Producer", 200 * MS, MsgMessageId="m-2"),
        _span("outer2", "Consumer", 205 * MS, MsgMessageId="m-2", StatusCode="Error", **recv | {"ParentSpanId": "p2"}),
        _span("inner2", "Consumer", 205 * MS + 1, MsgMessageId="m-2", StatusCode="Error", Duration=1 * MS,
              **recv | {"ParentSpanId": "p2"}),
    ]  # fmt: skip
    conn = _analyses(rows)
    (deliver,) = [e for e in flow.flow(conn, Filters())["edges"] if e["kind"] == "deliver"]
    assert (deliver["count"], deliver["errors"], deliver["duplicates"]) == (2, 1, 0)
    (stream,) = report.streams(conn, Filters())
    assert (stream["received"], stream["duplicates"], stream["redeliveries"]) == (2, 0, 0)
    assert [d["span_id"] for d in event_life.event(conn, "m-1")["deliveries"]] == ["outer"]
    assert duplicates.duplicates(conn, Filters())["duplicates"] == []


def test_two_deliveries_at_the_same_instant_are_two():
    recv = {"SpanName": "orders process", "ServiceName": "worker", "MsgSystem": "kafka", "ParentSpanId": "p1"}
    conn = _analyses([_span("p1", "Producer", 100 * MS), _span("a", "Consumer", 105 * MS, **recv),
                      _span("b", "Consumer", 105 * MS, **recv)])  # fmt: skip
    (stream,) = report.streams(conn, Filters())
    assert (stream["received"], stream["duplicates"]) == (2, 1)


def test_a_rabbitmq_message_handed_again_is_a_redelivery_and_a_second_publish_a_duplicate():
    """Nack with requeue: RabbitMQ hands the same published message (one producer span, the consumers' parent)
    to the group again, and nothing in pika's spans says so. A duplicate publish has a producer span of its own."""
    recv = {"SpanName": "orders receive", "ServiceName": "worker"}
    rows = [
        _span("p1", "Producer", 100 * MS),
        _span("nacked", "Consumer", 105 * MS, ParentSpanId="p1", **recv),
        _span("again", "Consumer", 110 * MS, ParentSpanId="p1", **recv),
        _span("p2", "Producer", 200 * MS, MsgMessageId="m-2"),
        _span("p3", "Producer", 201 * MS, MsgMessageId="m-2"),
        _span("first", "Consumer", 205 * MS, ParentSpanId="p2", MsgMessageId="m-2", **recv),
        _span("copy", "Consumer", 206 * MS, ParentSpanId="p3", MsgMessageId="m-2", **recv),
    ]
    conn = _analyses(rows)
    (stream,) = report.streams(conn, Filters())
    assert (stream["received"], stream["duplicates"], stream["redeliveries"], stream["duplicates_processed"]) == (
        4, 1, 1, 1,
    )  # fmt: skip
    found = {d["event_id"]: (d["copies"], d["redeliveries"], d["processed"]) for d in duplicates.duplicates(
        conn, Filters())["duplicates"]}  # fmt: skip
    assert found == {"m-1": (2, 1, 0), "m-2": (2, 0, 1)}
    retried = event_life.retried(conn, Filters(), 10)
    assert [(r["event_id"], r["kind"], r["attempts"], r["failed_attempts"]) for r in retried["retried"]] == [
        ("m-1", "redelivery", 2, 1)
    ]
    life = event_life.event(conn, "m-1")
    assert [(d["outcome"], d["redelivery"]) for d in life["deliveries"]] == [("retried", False), ("processed", True)]
    assert "redelivered after a failed attempt" in life["verdict"] and "more than once" not in life["verdict"]
    (deliver,) = [e for e in flow.flow(conn, Filters())["edges"] if e["kind"] == "deliver"]
    assert (deliver["count"], deliver["errors"], deliver["duplicates"]) == (4, 0, 1)
    seen = overview.overview(conn, Filters())
    assert (seen["deliveries"], seen["duplicates"], seen["redeliveries"], seen["duplicates_processed"]) == (4, 1, 1, 1)


def test_the_same_published_message_twice_at_a_group_of_another_broker_stays_a_duplicate():
    """Redis Pub/Sub (a group subscribed twice) and Kafka (a rebalance) hand one publish twice without a failure."""
    for system in ("redis", "kafka"):
        recv = {"SpanName": "orders process", "ServiceName": "worker", "MsgSystem": system, "ParentSpanId": "p1"}
        conn = _analyses([_span("p1", "Producer", 100 * MS), _span("a", "Consumer", 105 * MS, **recv),
                          _span("b", "Consumer", 110 * MS, **recv)])  # fmt: skip
        (stream,) = report.streams(conn, Filters())
        assert (stream["duplicates"], stream["redeliveries"], stream["duplicates_processed"]) == (1, 0, 1), system


def test_a_store_written_before_the_new_columns_opens_and_takes_new_rows(tmp_path):
    path = str(tmp_path / "old.duckdb")
    old_schema = SCHEMA
    for column in normalize.COLUMNS[-4:]:
        old_schema = re.sub(rf"\n    {column} [A-Z]+,?[^\n]*", "", old_schema)
    old_schema = old_schema.replace("SchemaVersion BIGINT,", "SchemaVersion BIGINT")
    conn = duckdb.connect(path)
    conn.execute(old_schema)
    conn.close()
    store = Store(path)
    try:
        store.write("otel_traces", [_span("s1", "Consumer", 1, DeliveryCount=2, Redelivered=True)])
        with store.cursor() as cursor:
            assert cursor.execute("SELECT SpanId, DeliveryCount, Redelivered FROM otel_traces").fetchall() == [
                ("s1", 2, True)
            ]
    finally:
        store.close()


def test_a_routing_key_never_outranks_a_named_destination():
    attrs = {"messaging.destination.name": "orders", "messaging.rabbitmq.routing_key": "rk"}
    at = normalize.COLUMNS.index("MsgDestination")
    for url in ("", "https://opentelemetry.io/schemas/1.11.0", "https://opentelemetry.io/schemas/1.26.0"):
        assert normalize.facts(attrs, normalize.plan_for(url))[at] == "orders"
