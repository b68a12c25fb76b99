"""orders: the write side. Accepts PlaceOrder commands and emits ``OrderPlaced`` carrying the
whole order (event-carried state transfer), partitioned by order id into a few long streams.

Two versions of OrderPlaced are live at once: the current instance publishes v2 (priced lines, a
total with its currency); a legacy instance, still deployed, publishes v1 for a share of orders.
Consumers upcast v1 to v2.
"""

from __future__ import annotations

import zlib

from sample_system.bus import Publisher
from sample_system.registry import schema_uri

SERVICE = "orders"
CHANNEL = "shop.orders"
ORDER_PLACED = "shop.order.placed"
ORDER_PLACED_SCHEMA = schema_uri(ORDER_PLACED, 2)
LEGACY_SCHEMA = schema_uri(ORDER_PLACED, 1)
CURRENCY = "EUR"


def is_legacy(order_id: str, v1_share: float) -> bool:
    """Whether the legacy (v1) instance takes this order: a stable share of order ids."""
    return zlib.crc32(order_id.encode()) % 1000 < v1_share * 1000


def order_v2(order: dict) -> dict:
    lines = [
        {"sku": line["sku"], "qty": line["qty"], "unit_price_cents": line.get("unit_price_cents", 0)}
        for line in order.get("lines", [])
    ]
    return {
        "order_id": order["order_id"],
        "user_id": order.get("user_id", "anonymous"),
        "lines": lines,
        "total": {"amount_cents": order.get("total_cents", 0), "currency": CURRENCY},
    }


def order_v1(order: dict) -> dict:
    return {
        "order_id": order["order_id"],
        "user_id": order.get("user_id", "anonymous"),
        "lines": [{"sku": line["sku"], "qty": line["qty"]} for line in order.get("lines", [])],
        "total_cents": order.get("total_cents", 0),
    }


class Orders:
    SERVICE = SERVICE

    def __init__(self, publisher: Publisher, legacy: Publisher | None = None, v1_share: float = 0.0):
        self._publisher = publisher
        self._legacy = legacy
        self._v1_share = v1_share

    def place_order(self, order: dict) -> dict:
        """Accept a PlaceOrder command and publish OrderPlaced; returns the event."""
        legacy = self._legacy is not None and is_legacy(order["order_id"], self._v1_share)
        publisher = self._legacy if legacy else self._publisher
        event = publisher.entity_event(
            CHANNEL,
            ORDER_PLACED,
            order_v1(order) if legacy else order_v2(order),
            order["order_id"],
            LEGACY_SCHEMA if legacy else ORDER_PLACED_SCHEMA,
        )
        publisher.publish(CHANNEL, event)
        return event
