"""payments: charges the customer's wallet for reserved stock: ``PaymentCaptured``, ``PaymentDeclined`` or
``PaymentFailed``.

The wallet is checked first: when the balance (less what earlier captures still hold) does not cover
the amount, the payment is declined (``PaymentDeclined``): the order is cancelled, inventory gives
the stock back (``StockReleased``, the compensating event) and no wallet ever goes below zero. A card
is declined by a fixed rule (amounts divisible by 23), so failures are deterministic. Transient
failures (the ``transient_error`` fault) are retried by the bus with backoff and jitter.
"""

from __future__ import annotations

from opentelemetry import trace

from sample_system.bus import Publisher
from sample_system.registry import schema_uri
from sample_system.services.inventory import CHANNEL as STOCK_CHANNEL
from sample_system.services.inventory import STOCK_RESERVED
from sample_system.wallet import Wallets

SERVICE = "payments"
CHANNELS = [STOCK_CHANNEL]
CHANNEL = "shop.payments"
PAYMENT_CAPTURED = "shop.payment.captured"
PAYMENT_FAILED = "shop.payment.failed"
PAYMENT_DECLINED = "shop.payment.declined"
DECLINE_DIVISOR = 23


class Payments:
    def __init__(self, publisher: Publisher, wallets: Wallets):
        self._publisher = publisher
        self._wallets = wallets
        self.captured_cents = 0
        self.declined = 0

    def handle(self, channel: str, event: dict, span: trace.Span) -> str:
        if event["type"] != STOCK_RESERVED:
            return "processed"
        data = event["data"]
        base = {"order_id": data["order_id"], "user_id": data["user_id"]}
        amount = data["amount_cents"]
        if amount % DECLINE_DIVISOR == 0:
            self._emit(PAYMENT_FAILED, {**base, "reason": "card declined"})
            return "processed"
        held, available = self._wallets.hold(data["user_id"], amount)
        if not held:
            self.declined += 1
            reason = f"balance {available / 100:.2f} does not cover {amount / 100:.2f}"
            declined = {**base, "amount_cents": amount, "available_cents": available, "reason": reason}
            self._emit(PAYMENT_DECLINED, declined)
            return "processed"
        self.captured_cents += amount
        self._emit(PAYMENT_CAPTURED, {**base, "amount_cents": amount, "currency": data["currency"]})
        return "processed"

    def _emit(self, event_type: str, data: dict) -> None:
        event = self._publisher.entity_event(CHANNEL, event_type, data, data["order_id"], schema_uri(event_type, 1))
        self._publisher.publish(CHANNEL, event)
