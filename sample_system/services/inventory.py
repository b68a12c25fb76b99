"""inventory: consumes ``OrderPlaced`` and reserves stock, emitting ``StockReserved`` or ``StockRejected``;
gives the stock back when the payment does not go through (``StockReleased``, the compensating event).

Stock lives in a Redis hash; a reservation that would take a SKU below zero is undone and
rejected, and the SKU is restocked (the warehouse reorders), so rejections come and go. Each
reservation is kept per order until its payment's outcome arrives on ``shop.payments``: captured,
it is final; failed or declined, its quantities go back to the shelf once (the record is taken
atomically, so a copy of the outcome releases nothing twice).
"""

from __future__ import annotations

import redis
from opentelemetry import trace

from sample_system.bus import Publisher
from sample_system.registry import schema_uri
from sample_system.services.orders import CHANNEL as ORDERS_CHANNEL

# payments imports this module, so the payment outcomes it reacts to are spelled here (a test holds them equal)
PAYMENTS_CHANNEL = "shop.payments"
PAYMENT_CAPTURED = "shop.payment.captured"
PAYMENT_UNPAID = ("shop.payment.failed", "shop.payment.declined")

SERVICE = "inventory"
CHANNELS = [ORDERS_CHANNEL, PAYMENTS_CHANNEL]
CHANNEL = "shop.stock"
STOCK_RESERVED = "shop.stock.reserved"
STOCK_REJECTED = "shop.stock.rejected"
STOCK_RELEASED = "shop.stock.released"
STOCK_KEY = "{sample}:inventory:stock"
RESERVATION_PREFIX = "{sample}:inventory:reservation:"
"""Per order, the quantities reserved for it (sku -> qty), until its payment's outcome arrives."""
RESERVATION_TTL_S = 3600
STOCK_START = 300
RESTOCK = 300


class Inventory:
    def __init__(self, client: redis.Redis, publisher: Publisher):
        self._client = client
        self._publisher = publisher
        self.reserved: dict[str, int] = {}

    def handle(self, channel: str, event: dict, span: trace.Span) -> str:
        if channel == PAYMENTS_CHANNEL:
            self._settle(event)
            return "processed"
        order = event["data"]
        short = self._reserve(order["lines"])
        if short is None:
            self._remember(order)
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

    def _remember(self, order: dict) -> None:
        key = RESERVATION_PREFIX + order["order_id"]
        quantities: dict[str, int] = {}
        for line in order["lines"]:
            quantities[line["sku"]] = quantities.get(line["sku"], 0) + int(line["qty"])
        pipe = self._client.pipeline()
        pipe.hset(key, mapping=quantities)
        pipe.expire(key, RESERVATION_TTL_S)
        pipe.execute()

    def _settle(self, event: dict) -> None:
        """A payment's outcome: a captured order's reservation is final, an unpaid one's stock goes back."""
        if event["type"] != PAYMENT_CAPTURED and event["type"] not in PAYMENT_UNPAID:
            return
        data = event["data"]
        pipe = self._client.pipeline(transaction=True)
        pipe.hgetall(RESERVATION_PREFIX + data["order_id"])
        pipe.delete(RESERVATION_PREFIX + data["order_id"])
        reserved = {k.decode(): int(v) for k, v in pipe.execute()[0].items()}
        if event["type"] == PAYMENT_CAPTURED or not reserved:
            return
        pipe = self._client.pipeline()
        for sku, qty in reserved.items():
            pipe.hincrby(STOCK_KEY, sku, qty)
            self.reserved[sku] = self.reserved.get(sku, 0) - qty
        pipe.execute()
        lines = [{"sku": sku, "qty": qty} for sku, qty in sorted(reserved.items())]
        reason = data.get("reason") or event["type"]
        self._emit(STOCK_RELEASED, {"order_id": data["order_id"], "user_id": data["user_id"], "lines": lines,
                                    "reason": reason})  # fmt: skip

    def _emit(self, event_type: str, data: dict) -> None:
        event = self._publisher.entity_event(CHANNEL, event_type, data, data["order_id"], schema_uri(event_type, 1))
        self._publisher.publish(CHANNEL, event)


def _money(total: dict) -> dict:
    return {"amount_cents": int(total["amount_cents"]), "currency": total["currency"]}
