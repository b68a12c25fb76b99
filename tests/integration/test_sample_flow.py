"""The sample shop end to end on a real Redis: the four-hop order flow is one trace with links,
every service takes part, and it still works through a real collectors process."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sample_system.config import load_config
from sample_system.shop import Shop, exporter_factory_for
from sample_system.storefront import drive, run_load
from tests.processes import wait_until

pytestmark = pytest.mark.integration

FOUR_HOPS = ["send shop.orders", "send shop.stock", "send shop.payments", "send shop.shipping"]


def _order(order_id: str, total_cents: int = 240) -> dict:
    return {
        "order_id": order_id,
        "user_id": "user-t",
        "lines": [{"sku": "sku-apple", "qty": 2, "unit_price_cents": 120}],
        "total_cents": total_cents,
    }


def test_four_hop_flow_is_one_trace_with_links(redis_server):
    memory = InMemorySpanExporter()
    config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_V1_SHARE": "0"})
    with Shop(config, exporter_factory_for(memory)) as shop:
        shop.accounts.sign_up({"user_id": "user-t"})  # a wallet that covers the order
        event = shop.orders.place_order(_order("order-hops"))
        wait_until(lambda: shop.notifications.sent == 1 and shop.wait_idle(quiet_s=0.3), what="order shipped")
    spans = [s for s in memory.get_finished_spans() if s.attributes.get("cloudevents.event_subject") == "order-hops"]
    trace_ids = {s.context.trace_id for s in spans}
    assert len(trace_ids) == 1
    producers = {s.context.span_id: s for s in spans if s.kind == SpanKind.PRODUCER}
    assert [s.name for s in sorted(producers.values(), key=lambda s: s.start_time)][:4] == FOUR_HOPS
    consumers = [s for s in spans if s.kind == SpanKind.CONSUMER]
    assert {(s.name, s.attributes["messaging.consumer.group.name"]) for s in consumers} >= {
        ("process shop.orders", "inventory"),
        ("process shop.stock", "payments"),
        ("process shop.payments", "shipping"),
        ("process shop.shipping", "notifications"),
        ("process shop.orders", "order-view"),
    }
    for consumer in consumers:
        producer = producers[consumer.parent.span_id]
        assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]
        assert consumer.attributes["messaging.message.id"] == producer.attributes["messaging.message.id"]
        assert consumer.attributes["eventscope.outcome"] == "processed"
        assert consumer.attributes["eventscope.attempts"] == 1
        assert consumer.attributes["eventscope.schema.version"] >= 1
    first = next(s for s in producers.values() if s.name == "send shop.orders")
    assert first.parent is None and first.attributes["messaging.message.id"] == event["id"]
    assert first.attributes["eventscope.schema.version"] == 2
    assert first.attributes["eventscope.receivers"] == 2  # inventory and order-view


def test_every_service_takes_part_under_load(redis_server):
    memory = InMemorySpanExporter()
    config = load_config({"REDIS_URL": redis_server.url})
    with Shop(config, exporter_factory_for(memory)) as shop:
        issued = run_load(shop.handlers(), rate=0, seed=5, stop=threading.Event(), limit=40)
        assert shop.wait_idle()
    services = {s.resource.attributes["service.name"] for s in memory.get_finished_spans()}
    assert services == {"orders", "inventory", "payments", "shipping", "notifications", "accounts", "order-view"}
    assert issued["sign_up"] >= 1 and issued["place_order"] >= 1
    assert all(c.outcomes.keys() <= {"processed"} for c in shop.consumers)


def test_link_only_mode_starts_a_new_trace(redis_server):
    memory = InMemorySpanExporter()
    config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_CONSUMER_PARENT": "none"})
    with Shop(config, exporter_factory_for(memory)) as shop:
        shop.orders.place_order(_order("order-x"))
        wait_until(lambda: shop.consumer("inventory").processed >= 1)
    spans = memory.get_finished_spans()
    (producer,) = [s for s in spans if s.kind == SpanKind.PRODUCER and s.name == "send shop.orders"]
    consumer = next(s for s in spans if s.kind == SpanKind.CONSUMER and s.name == "process shop.orders")
    assert consumer.parent is None
    assert consumer.context.trace_id != producer.context.trace_id
    assert consumer.links[0].context.span_id == producer.context.span_id


def test_shop_through_the_collectors_gives_matching_vantage_points(collectors, redis_server, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collectors.api)
    config = load_config({"REDIS_URL": redis_server.url})
    with Shop(config) as shop:
        drive(shop.orders.place_order, rate=0, seed=2, stop=threading.Event(), limit=20)
        wait_until(lambda: shop.consumer("inventory").processed >= 20)  # its orders, and payment outcomes
        assert shop.wait_idle()
    report = wait_until(lambda: (r := collectors.get("report")) and _has_orders(r, 20) and r, what="20 orders seen")
    bus = {
        (s["source"], s["partitionkey"])
        for s in report["streams"]
        if s["vantage"] == "bus" and s["channel"] == "shop.orders"
    }
    inventory = {
        (s["source"], s["partitionkey"])
        for s in report["streams"]
        if s["vantage"] == "inventory" and s["channel"] == "shop.orders"
    }
    assert bus == inventory
    assert all(s["missing"] == s["duplicates"] == s["out_of_order"] == 0 for s in report["streams"])


def _has_orders(report: dict, count: int) -> bool:
    def total(vantage: str) -> int:
        return sum(
            s["received"] for s in report["streams"] if s["vantage"] == vantage and s["channel"] == "shop.orders"
        )

    return total("bus") == count and total("inventory") == count
