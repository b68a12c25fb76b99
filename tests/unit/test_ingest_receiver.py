"""The receiver's answers: partial success as the OTLP spec writes it, 503 + Retry-After when the store is full."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collectors.ingest.admission import Admission
from collectors.ingest.receiver import JSON, PROTOBUF, TRACES, ingest
from collectors.storage.store import Store, StoreBusy

LIMIT = 1 << 20


@pytest.fixture
def store():
    store = Store(":memory:", queue_limit=1)
    yield store
    store.close()


def two_spans_one_bad() -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for name in ("good", "bad"):
        with provider.get_tracer("t").start_as_current_span(name):
            pass
    request = encode_spans(exporter.get_finished_spans())
    request.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x00" * 8
    return request.SerializeToString()


def stored_names(store: Store) -> list[str]:
    cursor = store.cursor()
    try:
        return [name for (name,) in cursor.execute("SELECT SpanName FROM otel_traces").fetchall()]
    finally:
        cursor.close()


def test_partial_success_counts_rejected_spans_and_keeps_the_good_one(store):
    reply = ingest(store, TRACES, two_spans_one_bad(), PROTOBUF, None, LIMIT)
    assert reply.status == 200
    response = ExportTraceServiceResponse.FromString(reply.body)
    assert response.partial_success.rejected_spans == 1
    assert "span_id" in response.partial_success.error_message
    assert stored_names(store) == ["good"]


def test_partial_success_in_json():
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "a"},
                            {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "", "name": "b"},
                        ]
                    }
                ]
            }
        ]
    }
    store = Store(":memory:")
    try:
        reply = ingest(store, TRACES, json.dumps(body).encode(), JSON, None, LIMIT)
        assert reply.status == 200
        assert json.loads(reply.body)["partialSuccess"]["rejectedSpans"] in ("1", 1)
        assert stored_names(store) == ["a"]
    finally:
        store.close()


def test_a_full_write_queue_answers_503_with_retry_after_and_acknowledges_nothing(store):
    release = threading.Event()
    blocker = store.submit_action(lambda cursor: release.wait(30))  # the writer is busy with this
    filler = None
    try:
        while filler is None:  # once the writer has taken the blocker, fill the one queue slot
            try:
                filler = store.submit_action(lambda cursor: None)
            except StoreBusy:
                continue
        reply = ingest(store, TRACES, two_spans_one_bad(), PROTOBUF, None, LIMIT)
        assert reply.status == 503
        assert ("Retry-After", "1") in reply.headers
    finally:
        release.set()
    assert blocker.wait(30) and filler.wait(30)
    assert stored_names(store) == []


def test_admission_bounds_requests_and_bytes():
    admission = Admission(max_requests=2, max_bytes=100)
    assert admission.try_enter(80) and admission.try_grow(80)
    assert not admission.try_enter(30)  # would not fit beside the 80 bytes held
    assert admission.try_enter(20)
    assert not admission.try_grow(21)  # bytes spent
    assert admission.try_grow(20)
    assert not admission.try_enter(1)  # requests spent
    admission.leave(80)
    assert admission.try_enter(80)
    assert admission.status() == {"in_flight": 2, "in_flight_bytes": 20}


def test_bytes_are_charged_as_they_arrive_not_as_announced():
    admission = Admission(max_requests=4, max_bytes=100)
    assert admission.try_enter(100) and admission.try_grow(1)  # announces the whole budget, sends one byte
    assert admission.try_enter(90) and admission.try_grow(90)  # a real export still fits
    assert admission.status() == {"in_flight": 2, "in_flight_bytes": 91}


def test_one_request_larger_than_the_byte_budget_is_still_admitted_alone():
    admission = Admission(max_requests=4, max_bytes=10)
    assert admission.try_enter(50) and admission.try_grow(50)
    assert not admission.try_enter(1)


def test_exports_are_decoded_one_at_a_time_and_all_committed(tmp_path):
    """Several senders at once: each export's decoding runs alone, every one is answered 200 and stored."""
    store = Store(str(tmp_path / "store.duckdb"))
    busy, most = [0], [0]
    lock = threading.Lock()

    def rows(request):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        try:
            threading.Event().wait(0.02)  # long enough for the other senders to arrive meanwhile
            return TRACES.rows(request)
        finally:
            with lock:
                busy[0] -= 1

    signal = dataclasses.replace(TRACES, rows=rows)
    replies: list[int] = []

    def send() -> None:
        replies.append(ingest(store, signal, two_spans_one_bad(), PROTOBUF, None, LIMIT).status)

    senders = [threading.Thread(target=send) for _ in range(4)]
    try:
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(30)
        assert replies == [200] * 4
        assert most[0] == 1
        assert stored_names(store) == ["good"] * 4
    finally:
        store.close()
