"""Kafka clients (kafka-python, confluent-kafka, aiokafka) as their OpenTelemetry instrumentations trace them.

No Kafka broker runs here, so each test sends, through the real OTLP exporter, spans with exactly the
names, kinds, parents, links and attributes that the instrumentation sets, as read from its source in
open-telemetry/opentelemetry-python-contrib at 466ae4c00de77d1f54f77a9600f1d08eba2306b5 (0.66b0.dev):

- kafka-python: instrumentation/opentelemetry-instrumentation-kafka-python/src/opentelemetry/instrumentation/
  kafka/utils.py (_enrich_span, _wrap_send, _create_consumer_span);
- confluent-kafka: instrumentation/opentelemetry-instrumentation-confluent-kafka/src/opentelemetry/
  instrumentation/confluent_kafka/__init__.py (wrap_produce, wrap_poll) and utils.py (_enrich_span,
  _create_new_consume_span, _set_bootstrap_servers_attributes);
- aiokafka: instrumentation/opentelemetry-instrumentation-aiokafka/src/opentelemetry/instrumentation/
  aiokafka/utils.py (_enrich_base_span, _enrich_send_span, _enrich_getone_span, _create_consumer_span).

The same traffic for each: 12 records on partition 0 of the topic ``payments`` (offsets 0..11); the
consumer never gets offset 5 (lost) and gets offset 8 twice after a rebalance (a duplicate: no attempt
failed before it). What each instrumentation lets one see differs, and the truth says so (``unseen``).
"""

from __future__ import annotations

import json
import time

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind

from tests import ground_truth
from tests.processes import running_collectors

pytestmark = pytest.mark.integration

MS = 1_000_000
TOPIC, PARTITION, GROUP = "payments", 0, "ledger"
OFFSETS = list(range(12))
LOST, DUPLICATE = 5, 8
BOOTSTRAP = ["127.0.0.1:9092"]


class Traffic:
    """Spans of one producer service and one consumer service, timed on a fixed grid 60 s ago."""

    def __init__(self, api: str, library: str):
        self.library = library
        self.providers = [self._provider(api, f"{library}-producer"), self._provider(api, f"{library}-consumer")]
        self.producer = self.providers[0].get_tracer(f"opentelemetry.instrumentation.{library}")
        self.consumer = self.providers[1].get_tracer(f"opentelemetry.instrumentation.{library}")
        self.base = time.time_ns() - 60_000 * MS
        self.sent = 0

    @staticmethod
    def _provider(api: str, service: str) -> TracerProvider:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{api}/v1/traces")))
        return provider

    def span(self, tracer, name: str, kind: SpanKind, at_ms: float, attributes: dict, parent=None, links=()):
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent else None
        start = self.base + int(at_ms * MS)
        span = tracer.start_span(
            name, context=context, kind=kind, attributes=attributes, links=list(links), start_time=start
        )
        span.end(end_time=start + 2 * MS)
        self.sent += 1
        return span.get_span_context()

    def flush(self) -> None:
        for provider in self.providers:
            provider.force_flush()
            provider.shutdown()


def consumed() -> list[int]:
    """The offsets the consumer got, in order: 5 never, 8 twice."""
    return [o for o in OFFSETS if o != LOST] + [DUPLICATE]


def kafka_python(traffic: Traffic) -> dict:
    def enrich(partition: int) -> dict:  # utils._enrich_span
        return {
            "messaging.system": "kafka",
            "messaging.destination": TOPIC,
            "messaging.kafka.partition": partition,
            "messaging.url": json.dumps(BOOTSTRAP),
        }

    sent = {
        o: traffic.span(traffic.producer, f"{TOPIC} send", SpanKind.PRODUCER, o * 10, enrich(PARTITION))
        for o in OFFSETS
    }
    for i, offset in enumerate(consumed()):  # the extracted producer context is the parent
        traffic.span(
            traffic.consumer, f"{TOPIC} receive", SpanKind.CONSUMER, 200 + i * 10, enrich(PARTITION), sent[offset]
        )
    return {
        "consumer_service": "kafka-python-consumer",
        # no message id, no offset, no group: no stream to count, copies and gaps cannot be told apart
        "unseen": {"duplicates": {f"{TOPIC}.{PARTITION}.{DUPLICATE}": 1}, "lost_sequences": [[LOST, LOST]]},
        "streams": False,
        "duplicates": {},
    }


def confluent_kafka(traffic: Traffic) -> dict:
    def enrich(operation: str, offset: int | None = None) -> dict:  # utils._enrich_span
        attributes = {
            "messaging.system": "kafka",
            "messaging.destination": TOPIC,
            "messaging.destination_kind": "queue",
            "messaging.operation": operation,
            "server.address": "127.0.0.1",
            "server.port": 9092,
        }
        if offset is not None:
            attributes |= {
                "messaging.kafka.partition": PARTITION,
                "messaging.message.id": f"{TOPIC}.{PARTITION}.{offset}",
            }
        return attributes

    # wrap_produce: no partition and no offset are known when the span ends
    sent = {
        o: traffic.span(traffic.producer, f"{TOPIC} send", SpanKind.PRODUCER, o * 10, enrich("publish"))
        for o in OFFSETS
    }
    for i, offset in enumerate(consumed()):
        # wrap_poll: an attribute-less CONSUMER span "recv" is the parent of the "process" span, which links
        # to the producer's context from the record's headers
        recv = traffic.span(traffic.consumer, "recv", SpanKind.CONSUMER, 200 + i * 10, {})
        traffic.span(
            traffic.consumer,
            f"{TOPIC} process",
            SpanKind.CONSUMER,
            200 + i * 10,
            enrich("process", offset),
            recv,
            [Link(sent[offset])],
        )
    return {
        "consumer_service": "confluent-kafka-consumer",
        # the offset is only inside messaging.message.id ("topic.partition.offset"), which names it
        "duplicates": {f"{TOPIC}.{PARTITION}.{DUPLICATE}": 1},
        "lost_sequences": [[LOST, LOST]],
        "numbered": True,
    }


def aiokafka(traffic: Traffic) -> dict:
    def base() -> dict:  # utils._enrich_base_span (no key sent)
        return {
            "messaging.system": "kafka",
            "server.address": json.dumps(BOOTSTRAP),
            "messaging.client.id": "aiokafka-1",
            "messaging.destination.name": TOPIC,
            "messaging.destination.partition.id": str(PARTITION),
        }

    send = base() | {"messaging.operation.name": "send", "messaging.operation.type": "publish"}
    sent = {o: traffic.span(traffic.producer, f"{TOPIC} send", SpanKind.PRODUCER, o * 10, send) for o in OFFSETS}
    for i, offset in enumerate(consumed()):  # _enrich_getone_span; the extracted producer context is the parent
        getone = base() | {
            "messaging.consumer.group.name": GROUP,
            "messaging.operation.name": "receive",
            "messaging.operation.type": "receive",
            "messaging.kafka.message.offset": offset,
            "messaging.message.id": f"{TOPIC}.{PARTITION}.{offset}",
        }
        traffic.span(traffic.consumer, f"{TOPIC} receive", SpanKind.CONSUMER, 200 + i * 10, getone, sent[offset])
    return {
        "consumer_service": "aiokafka-consumer",
        "consumer_group": GROUP,
        "duplicates": {f"{TOPIC}.{PARTITION}.{DUPLICATE}": 1},
        "lost_sequences": [[LOST, LOST]],
        "numbered": True,
    }


LIBRARIES = {"kafka-python": kafka_python, "confluent-kafka": confluent_kafka, "aiokafka": aiokafka}


@pytest.fixture(scope="module", params=list(LIBRARIES))
def kafka_run(request):
    with running_collectors() as collectors:
        traffic = Traffic(collectors.api, request.param)
        truth = {
            "system": "kafka",
            "channel": TOPIC,
            "producer_service": f"{request.param}-producer",
            "publishes": len(OFFSETS),
            "deliveries": len(consumed()),
            "redeliveries": {},
            "failed": [],
            "dead_lettered": [],
            "lost": [],
        } | LIBRARIES[request.param](traffic)
        traffic.flush()
        ground_truth.wait_for_spans(collectors, traffic.sent)
        yield request.param, collectors, truth


def test_kafka_spans_arrive_as_sent(kafka_run):
    _library, collectors, truth = kafka_run
    spans = ground_truth.stored_spans(collectors)
    consumers = [s for s in spans if s["kind"] == "Consumer" and s["name"] != "recv"]
    assert len(consumers) == truth["deliveries"]


@pytest.mark.parametrize("endpoint", ground_truth.ENDPOINTS)
def test_kafka_planted_counts(kafka_run, endpoint):
    _library, collectors, truth = kafka_run
    ground_truth.check(endpoint, collectors, truth)
