"""The minimal sample system end to end: OrderPlaced from orders, processed by inventory, traced."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sample_system.config import load_config
from sample_system.shop import Shop, exporter_factory_for
from sample_system.storefront import drive
from tests.processes import wait_until

pytestmark = pytest.mark.integration


def test_consumer_span_joins_the_producer_trace_with_a_link(redis_server):
    memory = InMemorySpanExporter()
    config = load_config({"REDIS_URL": redis_server.url})
    with Shop(config, exporter_factory_for(memory)) as shop:
        drive(shop.orders.place_order, rate=0, seed=1, stop=threading.Event(), limit=3)
        wait_until(lambda: shop.inventory.reserved and shop.consumers[0].processed == 3, what="3 deliveries")
    spans = memory.get_finished_spans()
    producers = {s.context.span_id: s for s in spans if s.kind == SpanKind.PRODUCER}
    consumers = [s for s in spans if s.kind == SpanKind.CONSUMER]
    assert len(producers) == 3 and len(consumers) == 3
    for consumer in consumers:
        producer = producers[consumer.parent.span_id]
        assert consumer.context.trace_id == producer.context.trace_id
        assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]
        assert consumer.name == "process shop.orders"
        assert consumer.attributes["messaging.operation.type"] == "process"
        assert consumer.attributes["messaging.consumer.group.name"] == "inventory"
        assert consumer.attributes["eventscope.outcome"] == "processed"
        assert consumer.attributes["messaging.message.id"] == producer.attributes["messaging.message.id"]
    for producer in producers.values():
        assert producer.name == "send shop.orders"
        assert producer.attributes["messaging.system"] == "redis"
        assert producer.attributes["messaging.operation.type"] == "send"
        assert producer.attributes["eventscope.receivers"] >= 1
        assert producer.attributes["cloudevents.event_type"] == "shop.order.placed"


def test_link_only_mode_starts_a_new_trace(redis_server):
    memory = InMemorySpanExporter()
    config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_CONSUMER_PARENT": "none"})
    with Shop(config, exporter_factory_for(memory)) as shop:
        shop.orders.place_order({"order_id": "order-x", "lines": []})
        wait_until(lambda: shop.consumers[0].processed == 1)
    (producer,) = [s for s in memory.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    (consumer,) = [s for s in memory.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert consumer.parent is None
    assert consumer.context.trace_id != producer.context.trace_id
    assert consumer.links[0].context.span_id == producer.context.span_id


def test_shop_through_the_collectors_gives_matching_vantage_points(collectors, redis_server, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collectors.api)
    config = load_config({"REDIS_URL": redis_server.url})
    with Shop(config) as shop:
        drive(shop.orders.place_order, rate=0, seed=2, stop=threading.Event(), limit=20)
        wait_until(lambda: shop.consumers[0].processed == 20)
    report = wait_until(
        lambda: (r := collectors.get("report"))["totals"]["received"] == 40 and r, what="20 bus + 20 consumer"
    )
    bus = {(s["source"], s["partitionkey"]): s for s in report["streams"] if s["vantage"] == "bus"}
    inventory = {(s["source"], s["partitionkey"]): s for s in report["streams"] if s["vantage"] == "inventory"}
    assert bus.keys() == inventory.keys()
    assert sum(s["received"] for s in bus.values()) == 20
    assert all(s["missing"] == s["duplicates"] == s["out_of_order"] == 0 for s in report["streams"])
    producer_trace = next(m["TraceId"] for m in collectors.get("messages")["messages"])
    spans = collectors.get(f"traces/{producer_trace}")["spans"]
    assert {s["SpanKind"] for s in spans} == {"Producer", "Consumer"}
