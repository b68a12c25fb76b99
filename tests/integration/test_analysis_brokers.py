"""Spans shaped like other brokers' instrumentations (Kafka, RabbitMQ, NATS, SQS), sent through the
stock OTLP exporter with no bus tap at all, give the same exact analyses."""

from __future__ import annotations

import time

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tests.processes import Collectors, wait_until

pytestmark = pytest.mark.integration

MS = 1_000_000


@pytest.fixture
def api_only():
    process = Collectors(redis_url=None)
    yield process
    process.stop()


class Spans:
    def __init__(self, api: str):
        self.api = api
        self.providers: dict[str, TracerProvider] = {}
        self.sent = 0
        self.base = time.time_ns() - 60_000 * MS

    def _tracer(self, service: str):
        if service not in self.providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{self.api}/v1/traces")))
            self.providers[service] = provider
        return self.providers[service].get_tracer("other.broker.instrumentation")

    def produce(self, service: str, name: str, at_ms: float, attributes: dict):
        span = self._tracer(service).start_span(
            name, kind=SpanKind.PRODUCER, attributes=attributes, start_time=self.base + int(at_ms * MS)
        )
        span.end(end_time=self.base + int((at_ms + 1) * MS))
        self.sent += 1
        return span.get_span_context()

    def client(self, service: str, name: str, at_ms: float, attributes: dict) -> None:
        span = self._tracer(service).start_span(
            name, kind=SpanKind.CLIENT, attributes=attributes, start_time=self.base + int(at_ms * MS)
        )
        span.end(end_time=self.base + int((at_ms + 1) * MS))
        self.sent += 1

    def consume(
        self, service: str, name: str, at_ms: float, attributes: dict, producer=None, parent=True, error: bool = False
    ) -> None:
        context = trace.set_span_in_context(trace.NonRecordingSpan(producer)) if producer and parent else None
        span = self._tracer(service).start_span(
            name,
            context=context,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=[Link(producer)] if producer else [],
            start_time=self.base + int(at_ms * MS),
        )
        if error:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        span.end(end_time=self.base + int((at_ms + 4) * MS))
        self.sent += 1

    def flush(self, collectors) -> None:
        for provider in self.providers.values():
            provider.force_flush()
            provider.shutdown()
        wait_until(lambda: collectors.get("health")["store"]["spans"] == self.sent, what="spans stored")


def kafka(offset: int, group: str | None = None) -> dict:
    attributes = {
        "messaging.system": "kafka",
        "messaging.destination.name": "orders",
        "messaging.destination.partition.id": "0",
        "messaging.kafka.offset": offset,
        "messaging.operation.type": "process" if group else "send",
    }
    return attributes | ({"messaging.consumer.group.name": group} if group else {})


def test_kafka_partition_offsets_are_the_stream_and_its_sequence(api_only):
    spans = Spans(api_only.api)
    produced = {offset: spans.produce("shop", "orders publish", offset, kafka(offset)) for offset in range(10, 16)}
    for offset in (10, 11, 13, 14, 14, 15):  # 12 never consumed, 14 redelivered after a rebalance
        spans.consume("billing", "orders process", offset + 20, kafka(offset, "billing"), produced[offset])
    spans.consume("billing", "orders process", 40, kafka(17, "billing"))
    spans.consume("billing", "orders process", 41, kafka(16, "billing"))  # late, and without a producer
    spans.flush(api_only)
    (stream,) = api_only.get("report?grace_s=0")["streams"]
    assert (stream["vantage"], stream["channel"], stream["source"], stream["partitionkey"]) == (
        "billing",
        "orders",
        None,
        "0",
    )
    assert (stream["received"], stream["duplicates"], stream["out_of_order"], stream["gaps"]) == (8, 1, 1, [[12, 12]])
    assert stream["duplicates_processed"] == 1  # no outcome recorded: a successful span is a processed delivery
    loss = api_only.get("loss?grace_s=0")
    assert [(x["where"], x["vantage"], x["sequence"]) for x in loss["lost"]] == [("at_delivery", "billing", 12)]
    arrivals = api_only.get("sequences?channel=orders&partitionkey=0&vantage=billing")["arrivals"]
    assert [(a["sequence"], a["late"], a["duplicate"]) for a in arrivals][-4:] == [
        (14, False, True),
        (15, False, False),
        (17, False, False),
        (16, True, False),
    ]
    latency = api_only.get("latency?by=group")
    (delivery,) = [s for s in latency["summary"] if s["measure"] == "delivery"]
    assert (delivery["count"], delivery["p50_ms"]) == (6, pytest.approx(20.0))
    edges = {(e["source"], e["target"], e["kind"]): e for e in api_only.get("flow")["edges"]}
    assert edges[("channel:orders", "service:billing", "deliver")]["gaps"] == 1
    assert edges[("service:shop", "channel:orders", "publish")]["count"] == 6


def rabbit(message_id: str, consumer: bool = False) -> dict:
    return {
        "messaging.system": "rabbitmq",
        "messaging.destination.name": "mail",
        "messaging.message.id": message_id,
        "messaging.rabbitmq.destination.routing_key": "welcome",
        "messaging.operation.type": "process" if consumer else "publish",
    }


def test_rabbitmq_without_groups_is_seen_by_the_consuming_service(api_only):
    spans = Spans(api_only.api)
    produced = {m: spans.produce("signup", "mail publish", i, rabbit(m)) for i, m in enumerate("abc")}
    spans.consume("mailer", "mail process", 10, rabbit("a", True), produced["a"], parent=False)
    spans.consume("mailer", "mail process", 12, rabbit("c", True), produced["c"], parent=False)
    spans.flush(api_only)
    (stream,) = api_only.get("report")["streams"]
    assert (stream["vantage"], stream["received"], stream["missing"]) == ("mailer", 2, 0)
    loss = api_only.get("loss?grace_s=0")
    assert [(x["where"], x["vantage"], x["event_id"]) for x in loss["lost"]] == [("at_delivery", "mailer", "b")]
    edges = {(e["source"], e["target"], e["kind"]) for e in api_only.get("flow")["edges"]}
    assert ("service:signup", "service:mailer", "link") in edges
    assert api_only.get("instrumentation")["missing_attributes"][0]["missing"] == ["messaging.consumer.group.name"]


def test_nats_duplicate_processed_twice(api_only):
    spans = Spans(api_only.api)
    attributes = {"messaging.system": "nats", "messaging.destination.name": "prices", "messaging.message.id": "n1"}
    producer = spans.produce("feed", "prices publish", 0, attributes)
    for at_ms in (3, 9):
        spans.consume(
            "ticker", "prices process", at_ms, attributes | {"messaging.consumer.group.name": "ticker"}, producer
        )
    spans.flush(api_only)
    duplicates = api_only.get("duplicates")
    assert duplicates["duplicates"][0] | {"trace_ids": None} == {
        "vantage": "ticker",
        "channel": "prices",
        "event_id": "n1",
        "copies": 2,
        "handled": 0,
        "processed": 1,
        "trace_ids": None,
        "redeliveries": 0,
    }
    assert api_only.get("overview")["duplicates_processed"] == 1


def test_sqs_failed_processing_is_lost_in_processing(api_only):
    spans = Spans(api_only.api)
    attributes = {"messaging.system": "aws_sqs", "messaging.destination.name": "invoices"}
    first = spans.produce("billing", "invoices send", 0, attributes | {"messaging.message.id": "m-1"})
    second = spans.produce("billing", "invoices send", 1, attributes | {"messaging.message.id": "m-2"})
    consumer = attributes | {"messaging.operation.type": "process"}
    spans.consume("archiver", "invoices process", 5, consumer | {"messaging.message.id": "m-1"}, first)
    spans.consume("archiver", "invoices process", 6, consumer | {"messaging.message.id": "m-2"}, second, error=True)
    spans.flush(api_only)
    loss = api_only.get("loss?grace_s=0")
    assert [(x["where"], x["vantage"], x["event_id"]) for x in loss["lost"]] == [("in_processing", "archiver", "m-2")]
    life = api_only.get("events/m-2")
    assert life["deliveries"][0]["outcome"] == "failed"


def test_node_redis_publish_names_its_channel_and_is_a_publish(api_only):
    """ioredis and redis (opentelemetry-js-contrib) keep PUBLISH's channel in db.statement (redis-common's
    defaultDbStatementSerializer: ``publish <channel> [1 other arguments]``); Python's masks it (``PUBLISH ? ?``)."""
    spans = Spans(api_only.api)
    ioredis = {"db.system": "redis", "db.statement": "publish prices [1 other arguments]"}
    for n in range(3):
        spans.client("ticker", "publish", n, ioredis)
    spans.client("ticker", "PUBLISH", 5, {"db.system": "redis", "db.statement": "PUBLISH ? ?"})
    spans.client("ticker", "SET", 6, {"db.system": "redis", "db.statement": "set k [1 other arguments]"})
    spans.flush(api_only)
    edges = {(e["source"], e["target"], e["kind"]): e["count"] for e in api_only.get("flow")["edges"]}
    assert edges == {("service:ticker", "channel:prices", "publish"): 3}
    blind = {b["kind"]: b for b in api_only.get("instrumentation")["blind_spots"]}
    assert (blind["pubsub_as_db_call"]["count"], blind["pubsub_as_db_call"]["where"]) == (4, ["ticker"])
    assert "producer_without_destination" not in blind
