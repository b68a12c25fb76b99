"""kill -9 the collectors while a sender exports: after restart every span that was answered 200 is stored."""

from __future__ import annotations

import threading

import duckdb
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.processes import Collectors, wait_until

pytestmark = pytest.mark.integration
NO_GRPC = {"EVENTSCOPE_GRPC_LISTEN": "off"}
BATCH = 50


class Sender(threading.Thread):
    """Exports batches of spans until stopped; remembers the span ids of every batch answered 200."""

    def __init__(self, endpoint: str):
        super().__init__(daemon=True)
        self.exporter = OTLPSpanExporter(endpoint=endpoint, timeout=2)
        self.acknowledged: set[str] = set()
        self.failed_batches = 0
        self.stop = threading.Event()
        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        self.tracer, self.memory = provider.get_tracer("durability"), memory

    def batch(self):
        self.memory.clear()
        for index in range(BATCH):
            with self.tracer.start_as_current_span(f"span {index}", attributes={"messaging.message.id": str(index)}):
                pass
        return self.memory.get_finished_spans()

    def run(self) -> None:
        while not self.stop.is_set():
            spans = self.batch()
            if self.exporter.export(spans) == SpanExportResult.SUCCESS:
                self.acknowledged.update(format(s.context.span_id, "016x") for s in spans)
            else:
                self.failed_batches += 1


def stored_span_ids(store: str) -> set[str]:
    connection = duckdb.connect(store, read_only=True)
    try:
        return {span_id for (span_id,) in connection.execute("SELECT SpanId FROM otel_traces").fetchall()}
    finally:
        connection.close()


def test_every_acknowledged_span_survives_kill_9():
    first = Collectors(redis_url=None, extra_env=NO_GRPC)
    sender = Sender(f"{first.api}/v1/traces")
    sender.start()
    try:
        wait_until(lambda: len(sender.acknowledged) >= 20 * BATCH, timeout=60, what="exports answered 200")
        first.process.kill()  # SIGKILL: no shutdown, no final commit, no checkpoint
        first.process.wait(timeout=10)
        wait_until(lambda: sender.failed_batches >= 1, timeout=60, what="an export failing against the dead process")
    finally:
        sender.stop.set()
        sender.join(timeout=30)
        first.stop()
    second = Collectors(redis_url=None, store=first.store, extra_env=NO_GRPC)
    try:
        assert second.get("health")["store"]["spans"] >= len(sender.acknowledged)
    finally:
        second.stop()
    missing = sender.acknowledged - stored_span_ids(first.store)
    assert not missing, f"{len(missing)} acknowledged spans were lost"
