"""OTLP decoding: payloads encoded by the stock exporter's own encoder decode into exact rows."""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind

from collectors.ingest.otlp import SPAN_COLUMNS, OtlpDecodeError, decode_json, decode_protobuf


@pytest.fixture
def finished_spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "send shop.orders",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "redis",
            "messaging.operation.type": "send",
            "messaging.destination.name": "shop.orders",
            "messaging.message.id": "evt-1",
            "cloudevents.event_source": "/sample/orders/1",
            "eventscope.sequence": 4,
            "eventscope.partitionkey": "p2",
        },
    ) as producer:
        pass
    with tracer.start_as_current_span(
        "process shop.orders",
        kind=SpanKind.CONSUMER,
        links=[Link(producer.get_span_context(), {"k": "v"})],
        attributes={"messaging.consumer.group.name": "inventory", "messaging.operation.type": "process"},
    ):
        pass
    return exporter.get_finished_spans()


def rows_by_name(rows):
    return {row[SPAN_COLUMNS.index("SpanName")]: dict(zip(SPAN_COLUMNS, row)) for row in rows}


def test_protobuf_from_the_stock_encoder(finished_spans):
    body = encode_spans(finished_spans).SerializeToString()
    rows = rows_by_name(decode_protobuf(body))
    producer, consumer = rows["send shop.orders"], rows["process shop.orders"]
    assert producer["SpanKind"] == "Producer"
    assert producer["ServiceName"] == "orders"
    assert producer["TraceId"] == format(finished_spans[0].context.trace_id, "032x")
    assert (producer["MsgSystem"], producer["MsgOperation"], producer["MsgDestination"]) == (
        "redis",
        "send",
        "shop.orders",
    )
    assert (producer["MsgMessageId"], producer["Sequence"], producer["PartitionKey"]) == ("evt-1", 4, "p2")
    assert json.loads(producer["SpanAttributes"])["eventscope.sequence"] == 4
    assert consumer["SpanKind"] == "Consumer"
    assert consumer["MsgConsumerGroup"] == "inventory"
    (link,) = json.loads(consumer["Links"])
    assert (link["TraceId"], link["SpanId"]) == (producer["TraceId"], producer["SpanId"])
    assert link["Attributes"] == {"k": "v"}
    assert producer["Duration"] >= 0


def test_json_encoding_with_hex_ids():
    body = json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                    "scopeSpans": [
                        {
                            "scope": {"name": "lib", "version": "1"},
                            "spans": [
                                {
                                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                                    "spanId": "eee19b7ec3c1b174",
                                    "name": "process q",
                                    "kind": 5,
                                    "startTimeUnixNano": "1000",
                                    "endTimeUnixNano": "3500",
                                    "attributes": [
                                        {"key": "messaging.system", "value": {"stringValue": "kafka"}},
                                        {"key": "messaging.kafka.offset", "value": {"intValue": "42"}},
                                        {"key": "messaging.destination.partition.id", "value": {"stringValue": "3"}},
                                    ],
                                    "status": {"code": 2, "message": "boom"},
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    ).encode()
    (row,) = decode_json(body)
    span = dict(zip(SPAN_COLUMNS, row))
    assert span["TraceId"] == "5b8efff798038103d269b633813fc60c"
    assert (span["SpanKind"], span["Duration"], span["StatusCode"], span["StatusMessage"]) == (
        "Consumer",
        2500,
        "Error",
        "boom",
    )
    assert (span["ScopeName"], span["ScopeVersion"]) == ("lib", "1")
    assert (span["Sequence"], span["PartitionKey"]) == (42, "3")


@pytest.mark.parametrize(
    "body",
    [b"\xff\xff\xff", b"\x0a\x05abc"],
    ids=["garbage", "truncated"],
)
def test_bad_protobuf_is_rejected(body):
    with pytest.raises(OtlpDecodeError):
        decode_protobuf(body)


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', b'{"resourceSpans": 5}'],
    ids=["truncated", "array", "bad id", "wrong type"],
)
def test_bad_json_is_rejected(body):
    with pytest.raises(OtlpDecodeError):
        decode_json(body)


def test_empty_request_decodes_to_no_rows():
    assert decode_protobuf(b"") == []
    assert decode_json(b"{}") == []
