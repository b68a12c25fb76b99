"""shipping: ships paid orders, turning ``PaymentCaptured`` into a thin ``OrderShipped``."""

from __future__ import annotations

from opentelemetry import trace

from sample_system.bus import Publisher
from sample_system.registry import schema_uri
from sample_system.services.payments import CHANNEL as PAYMENTS_CHANNEL
from sample_system.services.payments import PAYMENT_CAPTURED

SERVICE = "shipping"
CHANNELS = [PAYMENTS_CHANNEL]
CHANNEL = "shop.shipping"
ORDER_SHIPPED = "shop.order.shipped"


class Shipping:
    def __init__(self, publisher: Publisher):
        self._publisher = publisher
        self.shipped = 0

    def handle(self, channel: str, event: dict, span: trace.Span) -> str:
        if event["type"] != PAYMENT_CAPTURED:
            return "processed"
        data = event["data"]
        shipped = self._publisher.entity_event(
            CHANNEL,
            ORDER_SHIPPED,
            {"order_id": data["order_id"], "user_id": data["user_id"]},
            data["order_id"],
            schema_uri(ORDER_SHIPPED, 1),
        )
        self._publisher.publish(CHANNEL, shipped)
        self.shipped += 1
        return "processed"
