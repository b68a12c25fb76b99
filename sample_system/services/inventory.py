"""inventory: consumes ``OrderPlaced`` and reserves stock, emitting ``StockReserved`` or ``StockRejected``.

Stock lives in a Redis hash; a reservation that would take a SKU below zero is undone and
rejected, and the SKU is restocked (the warehouse reorders), so rejections come and go.
"""

from __future__ import annotations

import redis
from opentelemetry import trace

from sample_system.bus import Publisher
from sample_system.registry import schema_uri
from sample_system.services.orders import CHANNEL as ORDERS_CHANNEL

SERVICE = "inventory"
CHANNELS = [ORDERS_CHANNEL]
CHANNEL = "shop.stock"
STOCK_RESERVED = "shop.stock.reserved"
STOCK_REJECTED = "shop.stock.rejected"
STOCK_KEY = "sample:inventory:stock"
STOCK_START = 300
RESTOCK = 300


class Inventory:
    def __init__(self, client: redis.Redis, publisher: Publisher):
        self._client = client
        self._publisher = publisher
        self.reserved: dict[str, int] = {}

    def handle(self, channel: str, event: dict, span: trace.Span) -> str:
        order = event["data"]
        short = self._reserve(order["lines"])
        if short is None:
            for line in order["lines"]:
                self.reserved[line["sku"]] = self.reserved.get(line["sku"], 0) + int(line["qty"])
            total = order["total"]
            data = {"order_id": order["order_id"], "user_id": order["user_id"], **_money(total)}
            self._emit(STOCK_RESERVED, data)
        else:
            reason = f"{short} is out of stock"
            self._emit(
                STOCK_REJECTED,
                {"order_id": order["order_id"], "user_id": order["user_id"], "sku": short, "reason": reason},
            )
        return "processed"

    def _reserve(self, lines: list[dict]) -> str | None:
        """Take the stock for every line; on a shortage undo, restock, and return the short SKU."""
        pipe = self._client.pipeline()
        for line in lines:
            pipe.hsetnx(STOCK_KEY, line["sku"], STOCK_START)
            pipe.hincrby(STOCK_KEY, line["sku"], -int(line["qty"]))
        left = pipe.execute()[1::2]
        short = next((line["sku"] for line, n in zip(lines, left, strict=True) if n < 0), None)
        if short is not None:
            pipe = self._client.pipeline()
            for line in lines:
                pipe.hincrby(STOCK_KEY, line["sku"], int(line["qty"]))
            pipe.hincrby(STOCK_KEY, short, RESTOCK)
            pipe.execute()
        return short

    def _emit(self, event_type: str, data: dict) -> None:
        event = self._publisher.entity_event(CHANNEL, event_type, data, data["order_id"], schema_uri(event_type, 1))
        self._publisher.publish(CHANNEL, event)


def _money(total: dict) -> dict:
    return {"amount_cents": int(total["amount_cents"]), "currency": total["currency"]}
