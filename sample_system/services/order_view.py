"""order-view: the CQRS read side. A projection of every order into a Redis hash, built from the
order, stock, payment and shipping events, and the lag behind the write side measured per event. An
order whose payment is declined (the wallet was short) is ``cancelled``.

Events can arrive late or out of order, so a status only moves forward (placed < stock < payment
< shipped); the projection converges whatever the arrival order. The lag (now minus the event's
``time``) is put on the consumer span, recorded as a metric and kept in ``LAG_KEY``.
"""

from __future__ import annotations

import datetime
import time

import redis
from opentelemetry import trace
from redis.cluster import RedisCluster

from sample_system import telemetry
from sample_system.services.inventory import CHANNEL as STOCK_CHANNEL
from sample_system.services.orders import CHANNEL as ORDERS_CHANNEL
from sample_system.services.payments import CHANNEL as PAYMENTS_CHANNEL
from sample_system.services.shipping import CHANNEL as SHIPPING_CHANNEL

SERVICE = "order-view"
CHANNELS = [ORDERS_CHANNEL, STOCK_CHANNEL, PAYMENTS_CHANNEL, SHIPPING_CHANNEL]
VIEW_PREFIX = "{sample}:order-view:order:"
LAG_KEY = "{sample}:order-view:lag"
ATTR_LAG_MS = "eventscope.projection.lag_ms"
STATUS = {
    "shop.order.placed": ("placed", 1),
    "shop.stock.reserved": ("stock_reserved", 2),
    "shop.stock.rejected": ("stock_rejected", 2),
    "shop.payment.captured": ("paid", 3),
    "shop.payment.failed": ("payment_failed", 3),
    "shop.payment.declined": ("cancelled", 3),
    "shop.order.shipped": ("shipped", 4),
}
"""event type -> (order status, rank): the status only ever moves to a higher rank."""
ADVANCE = """
local rank = tonumber(redis.call('HGET', KEYS[1], 'rank') or '0')
if rank >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rank', ARGV[2], 'user_id', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'total_cents', ARGV[4]) end
return 1
"""
"""Moves an order's status forward only, in one round trip and atomically."""


def lag_ms(event_time: str | None, now_ns: int) -> float | None:
    """Milliseconds from the event's ``time`` to ``now_ns`` (None when the event has no valid time)."""
    if not event_time:
        return None
    try:
        moment = datetime.datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (now_ns - moment.timestamp() * 1e9) / 1e6


def order_status(client: redis.Redis, order_id: str) -> dict:
    """The projected order (empty when the view has never heard of it)."""
    return {k.decode(): v.decode() for k, v in client.hgetall(VIEW_PREFIX + order_id).items()}


class OrderView:
    def __init__(self, client: redis.Redis, metrics: telemetry.MessagingMetrics | None = None):
        self._client = client
        self._metrics = metrics
        self._advance = client.register_script(ADVANCE)
        self._batched = not isinstance(client, RedisCluster)  # a cluster client refuses a script in a pipeline
        self.applied = 0
        self.last_lag_ms: float | None = None
        self.max_lag_ms = 0.0

    def handle(self, channel: str, event: dict, span: trace.Span) -> str:
        status = STATUS.get(event["type"])
        if status is None:
            return "processed"
        data = event["data"]
        total = str(data["total"]["amount_cents"]) if "total" in data else ""
        lag = lag_ms(event.get("time"), time.time_ns())
        pipe = self._client.pipeline(transaction=False) if self._batched else self._client
        self._advance(
            keys=[VIEW_PREFIX + data["order_id"]],
            args=[status[0], status[1], data.get("user_id", ""), total],
            client=pipe,
        )
        if lag is not None:
            self._measure(lag, span, pipe)
        if self._batched:
            pipe.execute()
        self.applied += 1
        return "processed"

    def _measure(self, lag: float, span: trace.Span, pipe) -> None:
        self.last_lag_ms = lag
        self.max_lag_ms = max(self.max_lag_ms, lag)
        span.set_attribute(ATTR_LAG_MS, lag)
        pipe.hset(
            LAG_KEY, mapping={"last_ms": f"{lag:.1f}", "max_ms": f"{self.max_lag_ms:.1f}", "updated_ns": time.time_ns()}
        )
        if self._metrics is not None:
            self._metrics.projection_lag(SERVICE, lag)
