"""Property: whatever bytes, content types and sizes arrive, the receiver answers 200 or a 4xx (exactly when
the body does not decode), never fails, stays up, and keeps the good data sent alongside."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collectors.ingest.otlp import OtlpDecodeError
from collectors.ingest.receiver import JSON, PROTOBUF, SIGNALS_BY_PATH, Reply, decode_body
from tests.processes import Collectors

pytestmark = pytest.mark.integration
LIMIT = 64 * 1024
PATHS = sorted(SIGNALS_BY_PATH)
good_trace_ids: list[str] = []


@pytest.fixture(scope="module")
def receiver():
    env = {"EVENTSCOPE_MAX_BODY_BYTES": str(LIMIT), "EVENTSCOPE_GRPC_LISTEN": "off"}
    process = Collectors(redis_url=None, extra_env=env)
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def announce_huge(port: int, path: str, size: int) -> int:
    """Send only the headers of a body past the limit: the answer must come without the body being read."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nContent-Length: {size}\r\n\r\n"
        sock.sendall(head.encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def valid_protobuf() -> bytes:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("valid", attributes={"k": "v"}):
        pass
    return encode_spans(memory.get_finished_spans()).SerializeToString()


VALID = valid_protobuf()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
otlp_keys = st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "resourceLogs", "name"])
otlp_shaped = st.recursive(
    json_values, lambda children: st.dictionaries(otlp_keys, children, max_size=3) | st.lists(children, max_size=3)
)
bodies = st.one_of(
    st.binary(max_size=2048),
    st.binary(min_size=1, max_size=64).map(lambda junk: VALID[: len(VALID) // 2] + junk),
    st.integers(min_value=0, max_value=len(VALID) - 1).map(lambda cut: VALID[:cut]),
    json_values.map(lambda value: json.dumps(value).encode()),
    otlp_shaped.map(lambda value: json.dumps(value).encode()),
    st.just(b""),
)
content_types = st.sampled_from(
    [PROTOBUF, JSON, f"{JSON}; charset=utf-8", "text/plain", "application/grpc", "", "application/x-protobuf;;;", "é"]
)
encodings = st.sampled_from([None, None, "gzip", "identity", "br", "GZIP"])


def expected_ok(path: str, body: bytes, content_type: str, encoding: str | None) -> bool:
    """What the pure decoder says about this body: the oracle the running receiver must agree with."""
    try:
        decoded = decode_body(SIGNALS_BY_PATH[path], body, content_type, encoding, LIMIT)
    except OtlpDecodeError:
        return False
    return not isinstance(decoded, Reply)


def send_good(port: int) -> None:
    trace_id = uuid.uuid4().hex
    span = {"traceId": trace_id, "spanId": uuid.uuid4().hex[:16], "name": "good", "startTimeUnixNano": "1"}
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()
    assert post(port, "/v1/traces", gzip.compress(body), {"Content-Type": JSON, "Content-Encoding": "gzip"}) == 200
    good_trace_ids.append(trace_id)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(PATHS),
    body=bodies,
    content_type=content_types,
    encoding=encodings,
    compress=st.booleans(),
)
def test_any_input_gets_200_or_a_4xx_and_good_data_alongside_is_kept(
    receiver, path, body, content_type, encoding, compress
):
    if compress and encoding and encoding.lower() == "gzip":
        body = gzip.compress(body)
    headers = {"Content-Type": content_type} if content_type else {}
    if encoding:
        headers["Content-Encoding"] = encoding
    status = post(receiver.port, path, body, headers)
    assert status == 200 or 400 <= status < 500
    assert (status == 200) == expected_ok(path, body, content_type, encoding)
    send_good(receiver.port)


@pytest.mark.parametrize("path", PATHS)
def test_huge_bodies_and_gzip_bombs_get_413(receiver, path):
    assert announce_huge(receiver.port, path, 50 * LIMIT) == 413
    bomb = gzip.compress(b"\x00" * (LIMIT * 20))
    assert post(receiver.port, path, bomb, {"Content-Type": PROTOBUF, "Content-Encoding": "gzip"}) == 413
    send_good(receiver.port)


def test_the_receiver_is_up_and_every_good_span_was_kept(receiver):
    assert good_trace_ids, "the property tests above sent good spans"
    assert receiver.process.poll() is None
    for trace_id in good_trace_ids:
        assert receiver.get(f"traces/{trace_id}")["spans"][0]["name"] == "good"
