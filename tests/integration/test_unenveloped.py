"""Messages without an envelope: every message on a tapped channel counts, and Instrumentation health says
what cannot be seen in them and how to see it."""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tests.integration.test_bus_report import cloudevent, redis_cli
from tests.processes import wait_until

pytestmark = pytest.mark.integration


def test_plain_json_pubsub_messages_are_counted_and_a_channel_node(collectors, redis_server):
    """A redis-py app publishing JSON of its own (opentelemetry-instrumentation-redis adds no envelope)."""
    for n in range(6):
        redis_cli(redis_server.port, "PUBLISH", "app.prices", json.dumps({"symbol": "ACME", "price": 100 + n}))
    redis_cli(redis_server.port, "PUBLISH", "app.prices", "not json at all")
    redis_cli(redis_server.port, "PUBLISH", "t.events", cloudevent("/test/a", 1))
    redis_cli(redis_server.port, "PUBLISH", "t.events", json.dumps({"specversion": "1.0", "id": "x"}))  # malformed
    overview = wait_until(lambda: (o := collectors.get("overview"))["messages"] == 9 and o)
    assert (overview["unenveloped"], overview["malformed"], overview["bus_messages"]) == (7, 1, 1)
    assert overview["events_per_s"] > 0
    assert overview["duplicates"] == 0  # no id: duplicates cannot be seen, so none is claimed

    nodes = {n["id"]: n for n in collectors.get("flow")["nodes"]}
    assert nodes["channel:app.prices"]["messages"] == 7 and nodes["channel:app.prices"]["rate_per_s"] > 0
    assert nodes["channel:t.events"]["messages"] == 2
    assert collectors.get("flow?channel=t.events")["nodes"] == [
        {"id": "channel:t.events", "kind": "channel", "label": "t.events", "messages": 2,
         "rate_per_s": nodes["channel:t.events"]["rate_per_s"]}
    ]  # fmt: skip

    (blind,) = collectors.get("instrumentation")["blind_spots"]
    assert (blind["kind"], blind["count"], blind["where"]) == ("unenveloped", 7, ["app.prices"])
    assert {"duplicates", "gaps"} <= set(blind["cannot_see"])
    assert "pip install ./instrumentation/eventscope-redis" in blind["how"]
    assert collectors.get("instrumentation?channel=t.events")["blind_spots"] == []


def test_spans_without_ids_or_destinations_are_named_as_blind_spots(collectors):
    provider = TracerProvider(resource=Resource.create({"service.name": "app"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collectors.api}/v1/traces")))
    tracer = provider.get_tracer("opentelemetry.instrumentation.kafka")
    kafka_python = {"messaging.system": "kafka", "messaging.destination": "orders", "messaging.kafka.partition": 0}
    tracer.start_span("orders send", kind=SpanKind.PRODUCER, attributes={"messaging.system": "kafka"}).end()
    for _ in range(3):  # kafka-python's consumer spans: no message id, no offset
        tracer.start_span("orders receive", kind=SpanKind.CONSUMER, attributes=kafka_python).end()
    tracer.start_span(
        "orders receive", kind=SpanKind.CONSUMER, attributes=kafka_python | {"messaging.message.id": "m1"}
    ).end()
    provider.shutdown()
    wait_until(lambda: collectors.get("health")["store"]["spans"] == 5, what="spans stored")
    found = {b["kind"]: b for b in collectors.get("instrumentation")["blind_spots"]}
    assert (found["consumer_without_id"]["count"], found["consumer_without_id"]["where"]) == (3, ["orders"])
    assert (found["producer_without_destination"]["count"], found["producer_without_destination"]["where"]) == (
        1,
        ["app"],
    )
    assert (found["no_sequence"]["count"], found["no_sequence"]["where"]) == (1, ["orders"])
    assert "unenveloped" not in found
