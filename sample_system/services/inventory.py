"""inventory: consumes ``OrderPlaced`` and reserves stock (the minimal consumer for now)."""

from __future__ import annotations

from opentelemetry import trace

from sample_system.services.orders import CHANNEL as ORDERS_CHANNEL

SERVICE = "inventory"
CHANNELS = [ORDERS_CHANNEL]


class Inventory:
    def __init__(self):
        self.reserved: dict[str, int] = {}

    def handle(self, channel: str, event: dict, span: trace.Span) -> str:
        order = event.get("data") or {}
        for line in order.get("lines", []):
            self.reserved[line["sku"]] = self.reserved.get(line["sku"], 0) + int(line["qty"])
        return "processed"
