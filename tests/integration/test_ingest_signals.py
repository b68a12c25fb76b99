"""Traces, metrics and logs from the stock exporters, over OTLP/HTTP and OTLP/gRPC, land in the store."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import duckdb
import grpc
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.processes import Collectors, free_port, wait_until

pytestmark = pytest.mark.integration
RESOURCE = Resource.create({"service.name": "payments"})


@pytest.fixture
def with_grpc():
    grpc_port = free_port()
    process = Collectors(redis_url=None, extra_env={"EVENTSCOPE_GRPC_LISTEN": f"127.0.0.1:{grpc_port}"})
    process.grpc = f"127.0.0.1:{grpc_port}"
    yield process
    process.stop()


def stored(process: Collectors, sql: str) -> list[tuple]:
    """Rows from the store file after the process has stopped (only one process may open it)."""
    process.stop()
    connection = duckdb.connect(process.store, read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def metrics_data():
    reader = InMemoryMetricReader()
    meter = MeterProvider(resource=RESOURCE, metric_readers=[reader]).get_meter("shop")
    meter.create_counter("captured").add(2, {"channel": "shop.payments"})
    meter.create_histogram("amount").record(9.5)
    return reader.get_metrics_data()


def log_records(message: str):
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    provider.get_logger("shop.payments").emit(body=message, severity_text="WARN", severity_number=SeverityNumber.WARN)
    return memory.get_finished_logs()


def spans(name: str):
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span(name):
        pass
    return memory.get_finished_spans()


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip], ids=["plain", "gzip"])
def test_metrics_and_logs_over_http(with_grpc, compression):
    assert OTLPMetricExporter(endpoint=f"{with_grpc.api}/v1/metrics", compression=compression).export(
        metrics_data()
    ) == (MetricExportResult.SUCCESS)
    log_exporter = OTLPLogExporter(endpoint=f"{with_grpc.api}/v1/logs", compression=compression)
    assert log_exporter.export(log_records("card declined")).name == "SUCCESS"
    metrics = stored(with_grpc, "SELECT MetricName, MetricType, ServiceName FROM otel_metrics ORDER BY MetricName")
    assert metrics == [("amount", "histogram", "payments"), ("captured", "sum", "payments")]
    connection = duckdb.connect(with_grpc.store, read_only=True)
    try:
        logs = connection.execute("SELECT Body, SeverityText, ServiceName FROM otel_logs").fetchall()
        sums = connection.execute("SELECT MetricName, Value FROM otel_metrics_sum").fetchall()
    finally:
        connection.close()
    assert logs == [("card declined", "WARN", "payments")]
    assert sums == [("captured", 2.0)]


def test_retried_metric_and_log_exports_are_stored_once(with_grpc):
    data, records = metrics_data(), log_records("card declined")
    metric_exporter = OTLPMetricExporter(endpoint=f"{with_grpc.api}/v1/metrics")
    log_exporter = OTLPLogExporter(endpoint=f"{with_grpc.api}/v1/logs")
    for _ in range(3):  # a sender whose answer was lost sends the same export again
        assert metric_exporter.export(data) == MetricExportResult.SUCCESS
        assert log_exporter.export(records).name == "SUCCESS"
    assert GrpcMetricExporter(endpoint=with_grpc.grpc, insecure=True).export(data) == MetricExportResult.SUCCESS
    assert log_exporter.export(log_records("card declined")).name == "SUCCESS"  # a new record, same words
    counts = stored(
        with_grpc,
        "SELECT (SELECT count(*) FROM otel_metrics), (SELECT count(*) FROM otel_logs), "
        "(SELECT count(DISTINCT Timestamp) FROM otel_logs)",
    )
    assert counts == [(2, 2, 2)]


def test_every_signal_over_grpc(with_grpc):
    sent = spans("grpc span")
    assert GrpcSpanExporter(endpoint=with_grpc.grpc, insecure=True).export(sent) == SpanExportResult.SUCCESS
    assert GrpcMetricExporter(endpoint=with_grpc.grpc, insecure=True).export(metrics_data()) == (
        MetricExportResult.SUCCESS
    )
    assert GrpcLogExporter(endpoint=with_grpc.grpc, insecure=True).export(log_records("via grpc")).name == "SUCCESS"
    trace_id = format(sent[0].context.trace_id, "032x")
    assert with_grpc.get(f"traces/{trace_id}")["spans"][0]["name"] == "grpc span"
    assert with_grpc.get("health")["grpc"]["listening"] is True
    counts = stored(
        with_grpc, "SELECT (SELECT count(*) FROM otel_metrics), (SELECT string_agg(Body, ',') FROM otel_logs)"
    )
    assert counts == [(2, "via grpc")]


def test_grpc_can_be_turned_off():
    process = Collectors(redis_url=None, extra_env={"EVENTSCOPE_GRPC_LISTEN": "off"})
    try:
        assert process.get("health")["grpc"] == {"listen": None, "listening": False, "error": None}
    finally:
        process.stop()


def test_exports_beyond_the_in_flight_limit_get_429_with_retry_after():
    process = Collectors(redis_url=None, extra_env={"EVENTSCOPE_MAX_IN_FLIGHT": "1", "EVENTSCOPE_GRPC_LISTEN": "off"})
    held = socket.create_connection(("127.0.0.1", process.port))
    try:  # a sender that announced a body and sends it slowly holds the only slot
        held.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        wait_until(lambda: process.get("health")["ingest"]["in_flight"] == 1, what="the slow export is in flight")
        request = urllib.request.Request(
            f"{process.api}/v1/traces", data=b"{}", headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 429
        assert refused.value.headers["Retry-After"] == "1"
        held.close()
        wait_until(lambda: process.get("health")["ingest"]["in_flight"] == 0, what="the slot is given back")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
    finally:
        held.close()
        process.stop()
    assert "Traceback" not in process.log()


def test_grpc_reports_partial_success_and_refuses_oversized_messages():
    grpc_port = free_port()
    env = {"EVENTSCOPE_GRPC_LISTEN": f"127.0.0.1:{grpc_port}", "EVENTSCOPE_MAX_BODY_BYTES": "100000"}
    process = Collectors(redis_url=None, extra_env=env)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        request = encode_spans(spans("kept") + spans("rejected"))
        by_name = {span.name: span for span in request.resource_spans[0].scope_spans[0].spans}
        by_name["rejected"].trace_id = b"\x00" * 16
        response = stub.Export(request, timeout=30)
        assert response.partial_success.rejected_spans == 1
        assert "trace_id" in response.partial_success.error_message
        assert process.get(f"traces/{by_name['kept'].trace_id.hex()}")["spans"][0]["name"] == "kept"
        huge = encode_spans(spans("x" * 200_000))
        with pytest.raises(grpc.RpcError) as refused:
            stub.Export(huge, timeout=30)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        channel.close()
        process.stop()
    assert "Traceback" not in process.log()
