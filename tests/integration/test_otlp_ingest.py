"""The OTLP/HTTP receiver: spans from the stock exporter are stored and served; bad input gets a 4xx."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind

from tests.processes import Collectors

pytestmark = pytest.mark.integration


@pytest.fixture
def api_only():
    process = Collectors(redis_url=None)
    yield process
    process.stop()


def make_spans():
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("send t", kind=SpanKind.PRODUCER, attributes={"messaging.system": "redis"}) as p:
        pass
    producer_context = trace.set_span_in_context(p)
    with tracer.start_as_current_span(
        "process t", context=producer_context, kind=SpanKind.CONSUMER, links=[Link(p.get_span_context())]
    ):
        pass
    return memory.get_finished_spans()


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip], ids=["plain", "gzip"])
def test_a_span_from_the_stock_exporter_comes_back_by_trace_id(api_only, compression):
    spans = make_spans()
    exporter = OTLPSpanExporter(endpoint=f"{api_only.api}/v1/traces", compression=compression)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    trace_id = format(spans[0].context.trace_id, "032x")
    answer = api_only.get(f"traces/{trace_id}")
    by_name = {s["name"]: s for s in answer["spans"]}
    assert set(by_name) == {"send t", "process t"}
    assert by_name["send t"]["kind"] == "Producer"
    assert by_name["send t"]["attributes"] == {"messaging.system": "redis"}
    assert by_name["send t"]["service"] == "orders"
    assert by_name["process t"]["links"][0]["span_id"] == by_name["send t"]["span_id"]


def test_a_retried_export_never_counts_twice(api_only):
    spans = make_spans()
    exporter = OTLPSpanExporter(endpoint=f"{api_only.api}/v1/traces")
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert api_only.get("health")["store"]["spans"] == 2


def post(api: str, body: bytes, content_type: str | None, encoding: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{api}/v1/traces", data=body, method="POST")
    if content_type:
        request.add_header("Content-Type", content_type)
    if encoding:
        request.add_header("Content-Encoding", encoding)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


JSON_SPAN = {
    "resourceSpans": [
        {
            "scopeSpans": [
                {"spans": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "j"}]}
            ]
        }
    ]
}


@pytest.mark.parametrize(
    "body,content_type,encoding,status",
    [
        (b"\xff\xff\xff\xff", "application/x-protobuf", None, 400),
        (b"{oops", "application/json", None, 400),
        (json.dumps(JSON_SPAN).encode(), "text/plain", None, 415),
        (json.dumps(JSON_SPAN).encode(), None, None, 415),
        (b"not gzip", "application/json", "gzip", 400),
        (json.dumps(JSON_SPAN).encode(), "application/json", "br", 415),
    ],
    ids=["bad protobuf", "bad json", "wrong type", "no type", "bad gzip", "unknown encoding"],
)
def test_bad_requests_get_a_clear_4xx_and_good_data_is_kept(api_only, body, content_type, encoding, status):
    code, answer = post(api_only.api, body, content_type, encoding)
    assert code == status
    assert answer
    good, _ = post(api_only.api, gzip.compress(json.dumps(JSON_SPAN).encode()), "application/json", "gzip")
    assert good == 200
    assert api_only.get("traces/0af7651916cd43dd8448eb211c80319c")["spans"][0]["name"] == "j"
    assert api_only.get("health")["status"] == "ok"


def test_oversized_body_is_413():
    process = Collectors(redis_url=None, extra_env={"EVENTSCOPE_MAX_BODY_BYTES": "1000"})
    try:
        code, _ = post(process.api, b"x" * 5000, "application/x-protobuf")
        assert code == 413
        bomb = gzip.compress(b"\x00" * 100_000)
        code, _ = post(process.api, bomb, "application/x-protobuf", "gzip")
        assert code == 413
    finally:
        process.stop()


@pytest.mark.parametrize(
    "path,status", [("traces/nothex", 400), ("traces/" + "0" * 32, 404), ("nope", 404), ("messages?limit=0", 400)]
)
def test_query_api_errors(api_only, path, status):
    try:
        api_only.get(path)
        code = 200
    except urllib.error.HTTPError as exc:
        code = exc.code
        assert "error" in json.loads(exc.read())
    assert code == status
