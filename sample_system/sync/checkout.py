"""orders, synchronous: a PlaceOrder command is answered only once every step has answered.

The same business steps as the event-driven saga, as calls made in turn by orders: inventory reserves,
payments charges, shipping ships; then inventory settles, accounts books the withdrawal and
notifications sends the email. A declined payment gives the stock back before the answer. When a
service does not answer, the order fails, and what was already done is undone (stock released, the
wallet's hold let go): the customer is told to try again.
"""

from __future__ import annotations

import dataclasses

import redis
import requests
from opentelemetry import trace

from sample_system import wallet
from sample_system.services import accounts, inventory, notifications, orders, payments, shipping

ORDER_ID_ATTRIBUTE = "shop.order.id"
"""The order a synchronous call chain serves, on the orders SERVER span (HTTP spans have no subject)."""
CALL_TIMEOUT_S = 5.0
ACCEPTED = "accepted"
DECLINED = "declined"
FAILED = "failed"
SHIPPING_UNAVAILABLE = "shipping unavailable"


class Unavailable(RuntimeError):
    """A service did not answer (refused, timed out, or answered 5xx)."""

    def __init__(self, service: str, reason: str):
        super().__init__(f"{service} did not answer: {reason}")
        self.service = service


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What orders answers: accepted, declined (a business outcome) or failed (a service did not answer)."""

    order_id: str
    status: str
    reason: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class Checkout:
    """Runs one order through the services, in turn, over HTTP."""

    def __init__(self, session: requests.Session, urls: dict[str, str], client: redis.Redis):
        self._session = session
        self._urls = urls
        self._client = client

    def place(self, order: dict) -> Verdict:
        order_id = order["order_id"]
        trace.get_current_span().set_attribute(ORDER_ID_ATTRIBUTE, order_id)
        try:
            return self._steps(order)
        except Unavailable as exc:
            return Verdict(order_id, FAILED, str(exc))

    def _steps(self, order: dict) -> Verdict:
        order_id = order["order_id"]
        placed = {"type": orders.ORDER_PLACED, "subject": order_id, "data": orders.order_v2(order)}
        stock = self._call(inventory.SERVICE, orders.CHANNEL, placed)
        if stock["type"] != inventory.STOCK_RESERVED:
            return Verdict(order_id, DECLINED, stock["data"].get("reason", stock["type"]))
        payment = self._call(payments.SERVICE, inventory.CHANNEL, stock)
        if payment["type"] != payments.PAYMENT_CAPTURED:
            self._call(inventory.SERVICE, payments.CHANNEL, payment)  # the stock goes back
            return Verdict(order_id, DECLINED, payment["data"].get("reason", payment["type"]))
        try:
            shipped = self._call(shipping.SERVICE, payments.CHANNEL, payment)
        except Unavailable:
            self._undo(payment)
            raise
        self._call(inventory.SERVICE, payments.CHANNEL, payment)
        self._call(accounts.SERVICE, payments.CHANNEL, payment)
        self._call(notifications.SERVICE, shipping.CHANNEL, shipped)
        return Verdict(order_id, ACCEPTED)

    def _undo(self, payment: dict) -> None:
        """Shipping did not answer after the payment was captured: release the stock and the wallet's hold."""
        data = payment["data"]
        failed = {"order_id": data["order_id"], "user_id": data["user_id"], "reason": SHIPPING_UNAVAILABLE}
        self._call(inventory.SERVICE, payments.CHANNEL, {"type": payments.PAYMENT_FAILED, "data": failed})
        pipe = self._client.pipeline(transaction=True)
        wallet.release_hold(pipe, data["user_id"], int(data["amount_cents"]))
        pipe.execute()

    def _call(self, service: str, channel: str, event: dict) -> dict:
        """POST ``event`` to ``service``; the one event it emitted (or an empty one when it emitted none)."""
        url = f"{self._urls[service]}/handle/{channel}"
        try:
            response = self._session.post(url, json=event, timeout=CALL_TIMEOUT_S)
        except requests.RequestException as exc:
            raise Unavailable(service, type(exc).__name__) from None
        if response.status_code >= 500:
            raise Unavailable(service, f"HTTP {response.status_code}")
        if response.status_code >= 400:  # the event was not one it takes: the order itself is at fault
            raise ValueError(f"{service} refused it: HTTP {response.status_code}")
        emitted = response.json().get("emitted") or [{"type": "", "data": {}}]
        return emitted[0]
