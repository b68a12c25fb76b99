"""Metrics, logs and partial success decode from what the stock encoders produce; JSON equals protobuf."""

from __future__ import annotations

import base64
import json

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collectors.ingest.logs import LOG_COLUMNS, decode_logs
from collectors.ingest.metrics import METRIC_COLUMNS, decode_metrics
from collectors.ingest.otlp import SPAN_COLUMNS, OtlpDecodeError, decode_traces

RESOURCE = Resource.create({"service.name": "orders"})


def otlp_json(message) -> bytes:
    """OTLP/JSON as the spec writes it: protobuf's JSON mapping with hex ids instead of base64."""
    document = json_format.MessageToDict(message)

    def hexify(node):
        if isinstance(node, list):
            return [hexify(item) for item in node]
        if isinstance(node, dict):
            return {
                k: (base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") else hexify(v))
                for k, v in node.items()
            }
        return node

    return json.dumps(hexify(document)).encode()


@pytest.fixture
def metrics_request():
    reader = InMemoryMetricReader()
    meter = MeterProvider(resource=RESOURCE, metric_readers=[reader]).get_meter("shop", "2")
    meter.create_counter("orders", unit="1").add(3, {"channel": "shop.orders"})
    meter.create_histogram("latency", unit="ms").record(12.5)
    meter.create_observable_gauge("depth", callbacks=[lambda options: [Observation(7.0)]])
    return encode_metrics(reader.get_metrics_data())


def test_metrics_become_one_row_per_point_with_their_type(metrics_request):
    decoded = decode_metrics(metrics_request.SerializeToString(), False)
    rows = {row[METRIC_COLUMNS.index("MetricName")]: dict(zip(METRIC_COLUMNS, row)) for row in decoded.rows}
    assert decoded.rejected == 0
    assert rows["orders"]["MetricType"] == "sum"
    assert (rows["orders"]["Value"], rows["orders"]["IsMonotonic"]) == (3.0, True)
    assert json.loads(rows["orders"]["Attributes"]) == {"channel": "shop.orders"}
    assert rows["orders"]["AggregationTemporality"] == "Cumulative"
    assert (rows["latency"]["MetricType"], rows["latency"]["Count"], rows["latency"]["Sum"]) == ("histogram", 1, 12.5)
    assert sum(rows["latency"]["BucketCounts"]) == 1
    assert (rows["depth"]["MetricType"], rows["depth"]["Value"]) == ("gauge", 7.0)
    assert {r["ServiceName"] for r in rows.values()} == {"orders"}
    assert {(r["ScopeName"], r["ScopeVersion"]) for r in rows.values()} == {("shop", "2")}


def test_metrics_json_decodes_to_the_same_rows(metrics_request):
    as_protobuf = decode_metrics(metrics_request.SerializeToString(), False).rows
    assert decode_metrics(otlp_json(metrics_request), True).rows == as_protobuf


def test_a_point_without_time_is_rejected_alone(metrics_request):
    metrics_request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].time_unix_nano = 0
    decoded = decode_metrics(metrics_request.SerializeToString(), False)
    assert (decoded.rejected, len(decoded.rows)) == (1, 2)
    assert "time_unix_nano" in decoded.error_message


@pytest.fixture
def logs_request():
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    tracer_provider = TracerProvider()
    with tracer_provider.get_tracer("t").start_as_current_span("work") as span:
        provider.get_logger("shop.payments").emit(body="card declined", severity_text="WARN", attributes={"k": 1})
    provider.get_logger("shop.payments").emit(body={"structured": [1, 2]})
    return encode_logs(exporter.get_finished_logs()), span


def test_logs_keep_body_severity_and_trace_context(logs_request):
    request, span = logs_request
    decoded = decode_logs(request.SerializeToString(), False)
    first, second = (dict(zip(LOG_COLUMNS, row)) for row in decoded.rows)
    assert (first["Body"], first["SeverityText"], first["ServiceName"]) == ("card declined", "WARN", "orders")
    assert first["TraceId"] == format(span.get_span_context().trace_id, "032x")
    assert first["SpanId"] == format(span.get_span_context().span_id, "016x")
    assert json.loads(first["LogAttributes"]) == {"k": 1}
    assert json.loads(second["Body"]) == {"structured": [1, 2]}
    assert second["TraceId"] == ""
    assert decode_logs(otlp_json(request), True).rows == decoded.rows


def test_a_log_record_with_a_short_trace_id_is_rejected_alone(logs_request):
    request, _ = logs_request
    request.resource_logs[0].scope_logs[0].log_records[0].trace_id = b"\x01\x02"
    decoded = decode_logs(request.SerializeToString(), False)
    assert (decoded.rejected, len(decoded.rows)) == (1, 1)


def spans_request(count: int = 3):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for index in range(count):
        with provider.get_tracer("t").start_as_current_span(f"s{index}"):
            pass
    return encode_spans(exporter.get_finished_spans())


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("trace_id", b"\x00" * 16, "trace_id"),
        ("trace_id", b"\x01" * 5, "trace_id"),
        ("span_id", b"", "span_id"),
        ("parent_span_id", b"\x01\x02\x03", "parent_span_id"),
    ],
    ids=["zero trace id", "short trace id", "no span id", "short parent"],
)
def test_spans_with_unusable_ids_are_rejected_one_by_one(field, value, reason):
    request = spans_request()
    setattr(request.resource_spans[0].scope_spans[0].spans[1], field, value)
    decoded = decode_traces(request.SerializeToString(), False)
    assert decoded.rejected == 1
    assert reason in decoded.error_message
    assert [row[SPAN_COLUMNS.index("SpanName")] for row in decoded.rows] == ["s0", "s2"]


def test_trace_json_decodes_to_the_same_rows():
    request = spans_request()
    assert decode_traces(otlp_json(request), True).rows == decode_traces(request.SerializeToString(), False).rows


@pytest.mark.parametrize("body", [b"[1]", b'{"resourceLogs": {"x": 1}}', b'{"resourceLogs": [{"scopeLogs": 3}]}'])
def test_logs_json_of_the_wrong_shape_is_a_decode_error(body):
    with pytest.raises(OtlpDecodeError):
        decode_logs(body, True)
