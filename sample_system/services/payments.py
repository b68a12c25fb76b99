"""payments: captures payment for reserved stock, emitting ``PaymentCaptured`` or ``PaymentFailed``.

A card is declined by a fixed rule (amounts divisible by 23), so failures are deterministic.
Transient failures (the ``transient_error`` fault) are retried by the bus with backoff and jitter.
"""

from __future__ import annotations

from opentelemetry import trace

from sample_system.bus import Publisher
from sample_system.registry import schema_uri
from sample_system.services.inventory import CHANNEL as STOCK_CHANNEL
from sample_system.services.inventory import STOCK_RESERVED

SERVICE = "payments"
CHANNELS = [STOCK_CHANNEL]
CHANNEL = "shop.payments"
PAYMENT_CAPTURED = "shop.payment.captured"
PAYMENT_FAILED = "shop.payment.failed"
DECLINE_DIVISOR = 23


class Payments:
    def __init__(self, publisher: Publisher):
        self._publisher = publisher
        self.captured_cents = 0

    def handle(self, channel: str, event: dict, span: trace.Span) -> str:
        if event["type"] != STOCK_RESERVED:
            return "processed"
        data = event["data"]
        base = {"order_id": data["order_id"], "user_id": data["user_id"]}
        if data["amount_cents"] % DECLINE_DIVISOR == 0:
            self._emit(PAYMENT_FAILED, {**base, "reason": "card declined"})
        else:
            self.captured_cents += data["amount_cents"]
            self._emit(PAYMENT_CAPTURED, {**base, "amount_cents": data["amount_cents"], "currency": data["currency"]})
        return "processed"

    def _emit(self, event_type: str, data: dict) -> None:
        event = self._publisher.entity_event(CHANNEL, event_type, data, data["order_id"], schema_uri(event_type, 1))
        self._publisher.publish(CHANNEL, event)
