"""Rates (Overview events/s, flow edges) are over the time events were seen, not over an empty window."""

from __future__ import annotations

import json
import time

import pytest

from tests.processes import wait_until

pytestmark = pytest.mark.integration


def test_a_window_opened_before_the_first_event_does_not_dilute_the_rate(collectors, redis_server):
    client = redis_server.client()
    for sequence in range(1, 11):
        event = {
            "specversion": "1.0",
            "id": f"r{sequence}",
            "source": "/t/rate",
            "type": "t",
            "sequence": str(sequence),
        }
        client.publish("t.rate", json.dumps(event))
    wait_until(lambda: collectors.get("health")["store"]["bus_messages"] == 10)
    fifteen_minutes_ago = time.time_ns() - 15 * 60 * 10**9
    overview = collectors.get(f"overview?since_ns={fifteen_minutes_ago}")
    assert overview["bus_messages"] == 10
    # the ten events arrived within a few seconds: over 900 s the rate would read 0.01/s
    assert overview["events_per_s"] >= 10 / 30


def test_flow_edge_rates_are_not_diluted_by_an_early_window_start(collectors):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collectors.api}/v1/traces")))
    tracer = provider.get_tracer("test")
    for n in range(10):
        attributes = {
            "messaging.system": "redis",
            "messaging.operation.type": "send",
            "messaging.destination.name": "t.flow",
            "messaging.message.id": f"f{n}",
        }
        tracer.start_span("send t.flow", kind=SpanKind.PRODUCER, attributes=attributes).end()
    provider.shutdown()
    wait_until(lambda: collectors.get("health")["store"]["spans"] == 10)
    fifteen_minutes_ago = time.time_ns() - 15 * 60 * 10**9
    (edge,) = [e for e in collectors.get(f"flow?since_ns={fifteen_minutes_ago}")["edges"] if e["kind"] == "publish"]
    assert edge["count"] == 10
    assert edge["rate_per_s"] >= 10 / 30
