"""notifications: event notification. Thin events (``UserSignedUp``, ``OrderShipped``) say only that
something happened; this service "sends an email" for each, a log line that carries the trace id."""

from __future__ import annotations

import logging
from collections.abc import Callable

from opentelemetry import trace

from sample_system.services.shipping import CHANNEL as SHIPPING_CHANNEL
from sample_system.services.shipping import ORDER_SHIPPED

SERVICE = "notifications"
USERS_CHANNEL = "shop.users"
USER_SIGNED_UP = "shop.user.signed_up"
CHANNELS = [USERS_CHANNEL, SHIPPING_CHANNEL]

log = logging.getLogger(__name__)


class Notifications:
    def __init__(self):
        self.sent = 0
        self.on_order_shipped: Callable[[str], None] | None = None
        """Told each order id whose shipping email went out (a run that measures when an order was done)."""

    def handle(self, channel: str, event: dict, span: trace.Span) -> str:
        data = event["data"]
        if event["type"] == USER_SIGNED_UP:
            log.info("email to %s: welcome to the shop", data["user_id"])
        elif event["type"] == ORDER_SHIPPED:
            log.info("email to %s: order %s is on its way", data["user_id"], data["order_id"])
            if self.on_order_shipped is not None:
                self.on_order_shipped(data["order_id"])
        else:
            return "processed"
        self.sent += 1
        return "processed"
