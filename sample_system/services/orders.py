"""orders: the write side. Accepts PlaceOrder commands and emits ``OrderPlaced`` carrying the
whole order (event-carried state transfer), partitioned by order id into a few long streams."""

from __future__ import annotations

import zlib

from sample_system.bus import Publisher

CHANNEL = "shop.orders"
ORDER_PLACED = "shop.order.placed"
ORDER_PLACED_SCHEMA = "urn:eventscope:sample:schema:shop.order.placed:1"
PARTITIONS = 4


def partition_of(order_id: str, partitions: int = PARTITIONS) -> str:
    """A shard of the channel, stable for an order: hash(order id) mod partitions."""
    return f"p{zlib.crc32(order_id.encode()) % partitions}"


class Orders:
    SERVICE = "orders"

    def __init__(self, publisher: Publisher):
        self._publisher = publisher

    def place_order(self, order: dict) -> dict:
        """Accept a PlaceOrder command and publish OrderPlaced; returns the event."""
        event = self._publisher.event(
            CHANNEL,
            ORDER_PLACED,
            order,
            partitionkey=partition_of(order["order_id"]),
            subject=order["order_id"],
            dataschema=ORDER_PLACED_SCHEMA,
        )
        self._publisher.publish(CHANNEL, event)
        return event
