"""The collectors process applies retention by itself, keeping the newest traces."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.processes import Collectors, wait_until

pytestmark = pytest.mark.integration


def test_the_span_limit_keeps_the_newest_traces():
    env = {"EVENTSCOPE_RETENTION_INTERVAL_S": "0.2", "EVENTSCOPE_RETENTION_MAX_SPANS": "4"}
    process = Collectors(redis_url=None, extra_env={**env, "EVENTSCOPE_GRPC_LISTEN": "off"})
    try:
        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer = provider.get_tracer("t")
        for index in range(5):
            with tracer.start_as_current_span(f"root{index}"), tracer.start_as_current_span(f"child{index}"):
                pass
        spans = memory.get_finished_spans()
        assert OTLPSpanExporter(endpoint=f"{process.api}/v1/traces").export(spans).name == "SUCCESS"
        wait_until(lambda: process.get("health")["store"]["spans"] == 4, what="retention down to 4 spans")
        newest = [s for s in spans if s.name in ("root4", "root3")]
        for root in newest:
            assert len(process.get(f"traces/{root.context.trace_id:032x}")["spans"]) == 2
        assert process.get("health")["retention"]["max_spans"] == 4
    finally:
        process.stop()
    assert "Traceback" not in process.log()
