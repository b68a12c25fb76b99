"""Shipping reading shop.payments from a Redis Stream with a consumer group, on a real Redis: an order still
ships, its delivery is a CONSUMER span in the order's trace, and garbage in the stream is acknowledged and
recorded as failed, never a stall."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sample_system import stream_channel
from sample_system.config import load_config
from sample_system.services import payments
from sample_system.shop import Shop, exporter_factory_for
from tests.processes import wait_until

pytestmark = pytest.mark.integration

GARBAGE = [b"", b"not json", b'{"specversion": "1.0"}', b"\xff\xfe"]


def _order(order_id: str) -> dict:
    return {
        "order_id": order_id,
        "user_id": "user-st",
        "lines": [{"sku": "sku-pear", "qty": 1, "unit_price_cents": 150}],
        "total_cents": 150,
    }


def test_shipping_reads_its_channel_from_a_stream_and_skips_garbage(redis_server):
    memory = InMemorySpanExporter()
    config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_V1_SHARE": "0"})
    with Shop(config, exporter_factory_for(memory), stream_groups=("shipping",)) as shop:
        client = redis_server.client()
        for junk in GARBAGE:
            client.xadd(stream_channel.stream_key(payments.CHANNEL), {stream_channel.FIELD: junk})
        client.xadd(stream_channel.stream_key(payments.CHANNEL), {"other": b"field"})
        shop.accounts.sign_up({"user_id": "user-st"})
        shop.orders.place_order(_order("order-stream-1"))
        wait_until(lambda: shop.notifications.sent >= 2, what="the order shipped and its email sent")
        shipping = shop.consumer("shipping")
        pending = client.xpending(stream_channel.stream_key(payments.CHANNEL), "shipping")["pending"]
    assert shipping.outcomes.get("failed") == len(GARBAGE) + 1
    assert pending == 0  # everything read was acknowledged
    spans = memory.get_finished_spans()
    delivery = next(
        s for s in spans if s.name == "process shop.payments" and s.resource.attributes["service.name"] == "shipping"
        and s.attributes.get("cloudevents.event_subject") == "order-stream-1"
    )  # fmt: skip
    producer = next(s for s in spans if s.name == "send shop.payments" and s.context.span_id == delivery.parent.span_id)
    assert delivery.kind is SpanKind.CONSUMER and delivery.context.trace_id == producer.context.trace_id
    assert [link.context.span_id for link in delivery.links] == [producer.context.span_id]
    assert delivery.attributes["messaging.consumer.group.name"] == "shipping"
