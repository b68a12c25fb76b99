"""The OTLP receiver against hostile or careless senders: values out of range, trickling bodies, NaN, broken
framing and gzip, undecodable gRPC, chunked bodies and 100-continue, refusals that must be counted and logged,
and the bearer token. Each case keeps the good data sent alongside and leaves no traceback in the log."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import duckdb
import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collectors.ingest.receiver import SIGNALS_BY_PATH, Reply, decode_body
from tests.processes import ROOT, Collectors, free_port, wait_until

pytestmark = pytest.mark.integration
LIMIT = 64 * 1024
IN_FLIGHT = 4
DEADLINE_S = 2
JSON = "application/json"
PROTOBUF = "application/x-protobuf"
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
BIG = {"2^63": str(2**63), "2^64-1": str(2**64 - 1)}
HEAD_PIECES = [
    b"Content-Length: 5\r\n",
    b"Content-Length: 7\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999999\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Content-Type: application/json\r\n",
    b"Content-Encoding: gzip\r\n",
    b"Expect: 100-continue\r\n",
    b"Host: x\r\n",
    b" folded\r\n",
    b"\x00\xff\r\n",
    b"Authorization: Bearer \xe9\r\n",
]


def base_env(grpc_port: int) -> dict[str, str]:
    return {
        "EVENTSCOPE_MAX_BODY_BYTES": str(LIMIT),
        "EVENTSCOPE_MAX_IN_FLIGHT": str(IN_FLIGHT),
        "EVENTSCOPE_MAX_IN_FLIGHT_BYTES": str(2 * LIMIT),
        "EVENTSCOPE_REQUEST_DEADLINE_S": str(DEADLINE_S),
        "EVENTSCOPE_GRPC_LISTEN": f"127.0.0.1:{grpc_port}",
    }


@pytest.fixture(scope="module")
def collectors():
    grpc_port = free_port()
    process = Collectors(redis_url=None, extra_env=base_env(grpc_port))
    process.grpc_port = grpc_port
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()


def span(name: str, **fields) -> dict:
    return {"traceId": uuid.uuid4().hex, "spanId": uuid.uuid4().hex[:16], "name": name, **fields}


def traces_body(*spans: dict) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}).encode()


def post(collectors: Collectors, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{collectors.api}{path}", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post_json(collectors: Collectors, path: str, body: bytes) -> tuple[int, dict]:
    status, answer = post(collectors, path, body, {"Content-Type": JSON})
    return status, json.loads(answer)


def stored(collectors: Collectors, trace_id: str) -> bool:
    try:
        return bool(collectors.get(f"traces/{trace_id}")["spans"])
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        return False


def refused(collectors: Collectors, reason: str) -> int:
    return collectors.get("health")["ingest"]["refused_by_reason"].get(reason, 0)


def strict_json(text: bytes) -> object:
    def no_constant(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=no_constant)


def raw_exchange(port: int, head: str, body_parts=(), pause_s: float = 0.0) -> bytes:
    """Send a request head and body parts over one socket; everything the server answered until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            for part in body_parts:
                sock.sendall(part)
                time.sleep(pause_s)
        except OSError:  # the server answered and closed early: that is what some tests want
            pass
        with contextlib.suppress(OSError):  # already closed by the server
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(OSError):  # reset after answering: what was answered is still readable
            while chunk := sock.recv(65536):
                answer += chunk
        return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


# 1. Values out of range: rejected one by one (partial success), the rest stored and answered 200.

OUT_OF_RANGE_SPANS = {
    "start >= 2^63": {"startTimeUnixNano": BIG["2^63"], "endTimeUnixNano": BIG["2^63"]},
    "end = 2^64-1": {"startTimeUnixNano": "1000", "endTimeUnixNano": BIG["2^64-1"]},
    "sequence 99999999999999999999": {
        "attributes": [{"key": "eventscope.sequence", "value": {"stringValue": "99999999999999999999"}}]
    },
}


@pytest.mark.parametrize("fields", OUT_OF_RANGE_SPANS.values(), ids=OUT_OF_RANGE_SPANS.keys())
def test_a_span_out_of_range_is_rejected_alone_and_its_neighbour_is_stored(collectors, fields):
    good, bad = span("good", startTimeUnixNano="1000", endTimeUnixNano="2000"), span("bad", **fields)
    status, answer = post_json(collectors, "/v1/traces", traces_body(good, bad))
    assert status == 200
    assert int(answer["partialSuccess"]["rejectedSpans"]) == 1
    assert "out of the 64-bit integer range" in answer["partialSuccess"]["errorMessage"]
    assert stored(collectors, good["traceId"]) and not stored(collectors, bad["traceId"])


def test_a_span_out_of_range_over_grpc_is_rejected_alone(collectors):
    good = Span(trace_id=os.urandom(16), span_id=os.urandom(8), name="good", start_time_unix_nano=1000)
    bad = Span(trace_id=os.urandom(16), span_id=os.urandom(8), name="bad", start_time_unix_nano=2**64 - 1)
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[good, bad])])])
    with grpc.insecure_channel(f"127.0.0.1:{collectors.grpc_port}") as channel:
        export = channel.unary_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        response = export(request.SerializeToString(), timeout=30)
    assert response.partial_success.rejected_spans == 1
    assert stored(collectors, good.trace_id.hex()) and not stored(collectors, bad.trace_id.hex())


def test_metric_points_and_log_records_out_of_range_are_rejected_alone():
    process = Collectors(redis_url=None)
    points = [
        {"timeUnixNano": "5", "count": BIG["2^64-1"]},
        {"timeUnixNano": "6", "count": "2", "bucketCounts": ["1", BIG["2^64-1"]], "explicitBounds": [1.0]},
        {"timeUnixNano": "7", "count": "3", "bucketCounts": ["1", "2"], "explicitBounds": [1.0]},
    ]
    metrics = {
        "resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "h", "histogram": {"dataPoints": points}}]}]}]
    }
    records = [{"timeUnixNano": BIG["2^64-1"], "body": {"stringValue": "bad"}}, {"body": {"stringValue": "good"}}]
    logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    try:
        status, answer = post_json(process, "/v1/metrics", json.dumps(metrics).encode())
        assert status == 200 and int(answer["partialSuccess"]["rejectedDataPoints"]) == 2
        status, answer = post_json(process, "/v1/logs", json.dumps(logs).encode())
        assert status == 200 and int(answer["partialSuccess"]["rejectedLogRecords"]) == 1
    finally:
        process.stop()
    assert "Traceback" not in process.log(), process.log()
    connection = duckdb.connect(process.store, read_only=True)
    try:
        assert connection.execute("SELECT Count FROM otel_metrics").fetchall() == [(3,)]
        assert connection.execute("SELECT Body FROM otel_logs").fetchall() == [("good",)]
    finally:
        connection.close()


# 2. A trickling body loses its slot after one deadline for the whole body, not per read.


def trickle(port: int, stop: threading.Event, answers: list[bytes]) -> None:
    head = f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nContent-Length: {LIMIT - 1}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head.encode())
        sock.settimeout(0.5)
        while not stop.is_set():
            try:
                sock.sendall(b"\x0a")
                answers.append(sock.recv(4096))
                return
            except TimeoutError:  # no answer yet: another byte, well inside any per-read timeout
                continue
            except OSError:
                answers.append(b"closed")
                return


def test_trickling_bodies_hold_a_slot_each_but_not_the_byte_budget(collectors):
    stop, answers = threading.Event(), []
    senders = [threading.Thread(target=trickle, args=(collectors.port, stop, answers)) for _ in range(2)]
    for sender in senders:
        sender.start()
    try:
        wait_until(lambda: collectors.get("health")["ingest"]["in_flight"] == 2, what="trickles admitted")
        good = span("beside the trickles")  # the two announced 2 x LIMIT: the whole byte budget
        assert post_json(collectors, "/v1/traces", traces_body(good))[0] == 200
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=30)


def test_trickling_bodies_cannot_hold_the_in_flight_budget(collectors):
    stop, answers = threading.Event(), []
    senders = [threading.Thread(target=trickle, args=(collectors.port, stop, answers)) for _ in range(IN_FLIGHT)]
    for sender in senders:
        sender.start()
    try:
        wait_until(lambda: collectors.get("health")["ingest"]["in_flight"] == IN_FLIGHT, what="trickles admitted")
        good = span("after the trickles")
        wait_until(lambda: post_json(collectors, "/v1/traces", traces_body(good))[0] == 200, timeout=25, what="200")
        wait_until(lambda: len(answers) == IN_FLIGHT, timeout=25, what="every trickle answered")
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=30)
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers), answers
    assert refused(collectors, "timeout") >= IN_FLIGHT


def test_a_request_head_that_trickles_in_is_cut_off(collectors):
    with socket.create_connection(("127.0.0.1", collectors.port), timeout=60) as sock:
        sock.settimeout(0.5)
        head = iter(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: y\r\n" * 1000)

        def closed() -> bool:
            try:
                sock.sendall(bytes([next(head)]))  # a byte at a time, well inside any per-read timeout
                return sock.recv(4096) == b""
            except TimeoutError:
                return False
            except OSError:
                return True

        wait_until(closed, timeout=25, interval=0, what="the server to close the connection")


# 3. Strict JSON answers, backlog, bounded threads, framing, gzip, undecodable gRPC.


def test_nan_and_infinity_never_reach_a_json_answer(collectors):
    values = [{"key": k, "value": {"doubleValue": v}} for k, v in (("n", "NaN"), ("p", "Infinity"), ("m", "-Infinity"))]
    nan = span("nan", startTimeUnixNano="1000", endTimeUnixNano="2000", attributes=values)
    nan["events"] = [{"name": "e", "timeUnixNano": "1500", "attributes": values}]
    assert post_json(collectors, "/v1/traces", traces_body(nan))[0] == 200
    gauge = {"name": "g", "gauge": {"dataPoints": [{"timeUnixNano": "5", "asDouble": "NaN", "attributes": values}]}}
    metrics = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [gauge]}]}]}
    assert post_json(collectors, "/v1/metrics", json.dumps(metrics).encode())[0] == 200
    trace = strict_json(urllib.request.urlopen(f"{collectors.api}/api/v1/traces/{nan['traceId']}").read())
    assert trace["spans"][0]["attributes"] == {"n": "NaN", "p": "Infinity", "m": "-Infinity"}
    for path in ("health", "overview", "report", "flow", "latency", "traces", "messages", "instrumentation"):
        strict_json(urllib.request.urlopen(f"{collectors.api}/api/v1/{path}", timeout=30).read())


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read the listen backlog")
def test_the_listen_backlog_is_not_five(collectors):
    out = subprocess.run(["ss", "-ltnH", f"sport = :{collectors.port}"], capture_output=True, text=True).stdout
    backlog = int(out.split()[2])  # Send-Q of a listening socket is its backlog
    assert backlog >= 128


def process_threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def test_idle_connections_do_not_each_take_a_thread(collectors):
    before = process_threads(collectors.process.pid)
    sockets = [socket.create_connection(("127.0.0.1", collectors.port), timeout=30) for _ in range(100)]
    try:
        for sock in sockets:
            sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        time.sleep(1)  # let a thread-per-connection server start its threads, if that is what it does
        assert process_threads(collectors.process.pid) - before < 50
        status, _ = post_json(collectors, "/v1/traces", traces_body(span("alongside idle connections")))
        assert status == 200
    finally:
        for sock in sockets:
            sock.close()


def test_two_different_content_lengths_are_a_400(collectors):
    body = traces_body(span("framing"))
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {JSON}\r\n"
        f"Content-Length: {len(body)}\r\nContent-Length: {len(body) + 10}\r\nConnection: close\r\n\r\n"
    )
    before = refused(collectors, "bad_http")
    assert status_of(raw_exchange(collectors.port, head, [body])) == 400
    assert refused(collectors, "bad_http") == before + 1


def test_gzip_with_trailing_garbage_is_a_400_and_stores_nothing(collectors):
    sent = span("gzip with garbage")
    body = gzip.compress(traces_body(sent)) + b"trailing garbage"
    status, _ = post(collectors, "/v1/traces", body, {"Content-Type": JSON, "Content-Encoding": "gzip"})
    assert status == 400
    assert not stored(collectors, sent["traceId"])


def test_an_undecodable_grpc_message_is_invalid_argument(collectors):
    with grpc.insecure_channel(f"127.0.0.1:{collectors.grpc_port}") as channel:
        export = channel.unary_unary(TRACE_EXPORT)
        with pytest.raises(grpc.RpcError) as raised:
            export(b"\xff\xff\xff\xff not protobuf", timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid protobuf" in raised.value.details()


# 4. OTLP/HTTP as real clients send it; every refusal counted and logged.


def chunks(body: bytes, size: int = 100):
    return (body[i : i + size] for i in range(0, len(body), size))


def test_chunked_bodies_on_one_kept_alive_connection_are_stored(collectors):
    sent = [span("chunked one"), span("chunked two")]
    connection, sockets = http.client.HTTPConnection("127.0.0.1", collectors.port, timeout=30), []
    try:
        for item in sent:
            body = gzip.compress(traces_body(item))
            headers = {"Content-Type": JSON, "Content-Encoding": "gzip", "Transfer-Encoding": "chunked"}
            connection.request("POST", "/v1/traces", body=chunks(body), headers=headers, encode_chunked=True)
            answer = connection.getresponse()
            assert (answer.status, answer.read()) == (200, b"{}")
            sockets.append(connection.sock)
    finally:
        connection.close()
    assert sockets[0] is sockets[1]  # kept alive: both on one connection
    assert all(stored(collectors, item["traceId"]) for item in sent)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(st.binary(max_size=4096), st.just(traces_body(span("chunked property")))),
    pieces=st.integers(min_value=1, max_value=40),
    path=st.sampled_from(sorted(SIGNALS_BY_PATH)),
    media=st.sampled_from([JSON, PROTOBUF]),
)
def test_any_chunked_body_gets_the_same_answer_as_its_whole(collectors, body, pieces, path, media):
    expected = decode_body(SIGNALS_BY_PATH[path], body, media, None, LIMIT)
    expected_status = expected.status if isinstance(expected, Reply) else 200
    connection = http.client.HTTPConnection("127.0.0.1", collectors.port, timeout=30)
    try:
        size = max(1, len(body) // pieces)
        headers = {"Content-Type": media, "Transfer-Encoding": "chunked"}
        connection.request("POST", path, body=chunks(body, size), headers=headers, encode_chunked=True)
        answer = connection.getresponse()
        answer.read()
    finally:
        connection.close()
    assert answer.status == expected_status


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    head=st.one_of(
        st.binary(max_size=300),
        st.lists(st.sampled_from(HEAD_PIECES), max_size=8).map(lambda pieces: b"".join(pieces)),
    )
)
def test_garbage_request_heads_get_a_counted_4xx_or_nothing_and_the_server_stays_up(collectors, head):
    before = collectors.get("health")["ingest"]["refused"]
    with socket.create_connection(("127.0.0.1", collectors.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\n" + head + b"\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    answer = answer.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")  # a garbage head may still ask for it
    assert answer == b"" or 400 <= status_of(answer) < 500, answer[:200]  # nothing: the sender half-closed
    health = collectors.get("health")
    assert health["status"] == "ok"
    if answer:
        assert health["ingest"]["refused"] > before  # a sender turned away is counted


def test_a_chunked_body_past_the_limit_is_cut_off_while_reading(collectors):
    head = f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = b"\x00" * 8192
    parts = [b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(4 * LIMIT // len(piece))] + [b"0\r\n\r\n"]
    before = refused(collectors, "body_too_large")
    assert status_of(raw_exchange(collectors.port, head, parts)) == 413
    assert refused(collectors, "body_too_large") == before + 1


def test_expect_100_continue_is_answered_and_refusals_come_before_it(collectors):
    body = traces_body(span("after 100 continue"))
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {JSON}\r\nExpect: 100-continue\r\nConnection: close\r\n"
    )
    with socket.create_connection(("127.0.0.1", collectors.port), timeout=30) as sock:
        sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    with socket.create_connection(("127.0.0.1", collectors.port), timeout=30) as sock:
        sock.sendall(f"{head}Content-Length: {LIMIT * 4}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")  # not 100: the sender need not send the body


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_every_refusal_is_counted_per_reason_and_logged_rate_limited_with_the_client(collectors):
    before = collectors.get("health")["ingest"]["refused_by_reason"]
    for _ in range(20):  # no other test here uses a wrong method, so every line of this reason is from these
        assert get_status(f"{collectors.api}/v1/traces") == 405
    assert post(collectors, "/v1/nothing", b"{}", {"Content-Type": JSON})[0] == 404
    assert post(collectors, "/v1/traces", b"{}", {"Content-Type": "text/plain"})[0] == 415
    after = collectors.get("health")["ingest"]
    counts = after["refused_by_reason"]
    assert counts["method_not_allowed"] == before.get("method_not_allowed", 0) + 20
    assert counts["not_found"] == before.get("not_found", 0) + 1
    assert counts["unsupported_media"] == before.get("unsupported_media", 0) + 1
    assert after["refused"] == sum(counts.values())
    lines = [line for line in collectors.log().splitlines() if "(method_not_allowed)" in line]
    assert 1 <= len(lines) < 20  # rate-limited: one line per 10 s with the count, not one per request
    assert "from 127.0.0.1:" in lines[0]


# 5. The bearer token.


@pytest.fixture(scope="module")
def guarded():
    grpc_port = free_port()
    process = Collectors(redis_url=None, extra_env={**base_env(grpc_port), "EVENTSCOPE_TOKEN": "s3cret-token"})
    process.grpc_port = grpc_port
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()


WRONG_AUTHORIZATIONS = [None, "Bearer wrong", "Bearer s3cret-tokeN", "Basic s3cret-token", "s3cret-token"]


@pytest.mark.parametrize("authorization", WRONG_AUTHORIZATIONS)
def test_without_the_right_token_ingest_and_the_api_answer_401(guarded, authorization):
    headers = {"Content-Type": JSON} | ({"Authorization": authorization} if authorization else {})
    sent = span("unauthorized")
    assert post(guarded, "/v1/traces", traces_body(sent), headers)[0] == 401
    request = urllib.request.Request(f"{guarded.api}/api/v1/health", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=30)
    assert raised.value.code == 401
    assert not stored(guarded, sent["traceId"])


def test_with_the_token_ingest_and_the_api_work(guarded):
    sent = span("authorized")
    headers = {"Content-Type": JSON, "Authorization": "bearer s3cret-token"}  # the scheme's case does not matter
    assert post(guarded, "/v1/traces", traces_body(sent), headers)[0] == 200
    assert stored(guarded, sent["traceId"])  # Collectors.get sends the token
    assert refused(guarded, "unauthorized") >= len(WRONG_AUTHORIZATIONS)  # the wrong ones above were counted


def test_grpc_requires_the_token(guarded):
    request = ExportTraceServiceRequest().SerializeToString()
    with grpc.insecure_channel(f"127.0.0.1:{guarded.grpc_port}") as channel:
        export = channel.unary_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        with pytest.raises(grpc.RpcError) as raised:
            export(request, timeout=30, metadata=[("authorization", "Bearer wrong")])
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert export(request, timeout=30, metadata=[("authorization", "Bearer s3cret-token")]) is not None


@pytest.mark.parametrize("command", ["report", "check"])
def test_the_clis_send_the_token(guarded, command):
    env = {**os.environ, "EVENTSCOPE_API": guarded.api, "EVENTSCOPE_TOKEN": "s3cret-token"}
    args = [sys.executable, "-m", "collectors", command]
    with_token = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    without = subprocess.run(
        args, cwd=ROOT, env={**env, "EVENTSCOPE_TOKEN": ""}, capture_output=True, text=True, timeout=60
    )
    assert with_token.returncode in (0, 1), with_token.stdout + with_token.stderr  # 1: a limit failed, still read
    assert without.returncode == 2 and "401" in without.stdout + without.stderr
