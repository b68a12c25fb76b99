"""Read mode on the Pub/Sub instrumentation's own spans: eventscope-redis publishing and consuming on a real
redis-server, its spans stored by the clickhouseexporter's mapping (devtools/exporter_tables.py) and read back through
the views, give the rows eventscope's decoder gives (attribute values as the exporter's text, as in
tests/unit/test_clickhouse_exporter.py)."""

from __future__ import annotations

import uuid

import pytest
import redis
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collectors.ingest import otlp
from collectors.storage import schema
from collectors.storage.clickhouse import exporter
from devtools.exporter_tables import PIPELINE_DATABASE, ChdbClient, create_pipeline, insert_spans
from eventscope_redis import RedisPubSubInstrumentor, message
from tests.unit.test_clickhouse_exporter import expected_row, key, parsed, request_of, view_rows

pytestmark = pytest.mark.integration
EVENTS = 5
WAIT_S = 5.0


@pytest.fixture
def instrumented():
    found = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(SimpleSpanProcessor(found))
    instrumentor = RedisPubSubInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield found
    instrumentor.uninstrument()


def publish_and_consume(url: str, channel: str) -> None:
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=WAIT_S)
    for number in range(EVENTS):
        with message(type="shop.order.placed", subject=f"o-{number}", partitionkey=str(number % 2)):
            client.publish(channel, f'{{"order": {number}, "note": "a/b"}}')
    received = 0
    while received < EVENTS:
        if pubsub.get_message(timeout=WAIT_S) is not None:
            received += 1
    pubsub.get_message(timeout=0.05)  # asking for the next message ends the last delivery
    pubsub.close()


def test_the_instrumentations_spans_read_back_as_the_decoder_stores_them(instrumented, redis_server, tmp_path):
    publish_and_consume(redis_server.url, f"orders.{uuid.uuid4().hex[:6]}")
    body = request_of(instrumented.get_finished_spans())
    decoded = otlp.decode_traces(body, False)
    assert len(decoded.rows) == 2 * EVENTS and decoded.links
    client = ChdbClient(str(tmp_path / "chdb"))
    try:
        create_pipeline(client)
        exporter.create(client, PIPELINE_DATABASE)
        insert_spans(client, ExportTraceServiceRequest.FromString(body))
        got = sorted(map(parsed, view_rows(client, "otel_traces")), key=key)
        links = sorted(view_rows(client, "span_links"))
    finally:
        client.close()
    want = sorted(map(expected_row, decoded.rows), key=key)
    assert [dict(zip(schema.SPAN_COLUMNS, row, strict=True)) for row in got] == [
        dict(zip(schema.SPAN_COLUMNS, row, strict=True)) for row in want
    ]
    assert {row[schema.SPAN_COLUMNS.index("PartitionKey")] for row in got} == {"0", "1"}
    assert links == sorted(decoded.links)
