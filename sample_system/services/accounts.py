"""accounts: event sourcing. Every change to a customer's wallet is an event appended to a Redis
Stream, the event store; the balance is never stored on its own authority but rebuilt by replaying
the store, and can be asked for at any past moment (replay up to it).

``AccountOpened``, ``DepositMade`` and ``WithdrawalMade`` are appended and also published on
``shop.accounts``. A live balance hash is updated in the same transaction as each append, so a
replay can be checked against it. Sign-ups come from the storefront (``UserSignedUp``, a thin event
on ``shop.users``); withdrawals come from captured payments, whose hold on the wallet (sample_system.wallet)
ends in the same transaction as the withdrawal's append.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable

import redis
from opentelemetry import trace

from sample_system import wallet
from sample_system.bus import Publisher
from sample_system.registry import schema_uri
from sample_system.services.notifications import USER_SIGNED_UP, USERS_CHANNEL
from sample_system.services.payments import CHANNEL as PAYMENTS_CHANNEL
from sample_system.services.payments import PAYMENT_CAPTURED

SERVICE = "accounts"
CHANNELS = [PAYMENTS_CHANNEL]
CHANNEL = "shop.accounts"
EVENT_STORE = "{sample}:accounts:events"
LIVE_BALANCES = wallet.BALANCES
ACCOUNT_OPENED = "shop.account.opened"
DEPOSIT_MADE = "shop.account.deposit_made"
WITHDRAWAL_MADE = "shop.account.withdrawal_made"
WELCOME_CREDIT_CENTS = 5000


def apply(balances: dict[str, int], event_type: str, account: str, amount: int) -> None:
    """Fold one stored event into the balances (the one place that gives events their meaning)."""
    if event_type == ACCOUNT_OPENED:
        balances.setdefault(account, 0)
    elif event_type == DEPOSIT_MADE:
        balances[account] = balances.get(account, 0) + amount
    elif event_type == WITHDRAWAL_MADE:
        balances[account] = balances.get(account, 0) - amount


def fold(entries: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """Balances from (type, account, amount) entries, oldest first."""
    balances: dict[str, int] = {}
    for event_type, account, amount in entries:
        apply(balances, event_type, account, amount)
    return balances


def stored(fields: dict) -> tuple[str, str, int]:
    text = {
        k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v for k, v in fields.items()
    }
    return text["type"], text["account_id"], int(text["amount_cents"])


def replay(client: redis.Redis, until_ms: int | None = None) -> dict[str, int]:
    """Every balance rebuilt from the event store, up to ``until_ms`` (Unix ms, inclusive) or all."""
    entries = client.xrange(EVENT_STORE, min="-", max=str(until_ms) if until_ms is not None else "+")
    return fold(stored(fields) for _, fields in entries)


def balance_at(client: redis.Redis, account: str, at_ms: int | None = None) -> int | None:
    """One account's balance at a past moment (None if it did not exist yet)."""
    return replay(client, at_ms).get(account)


def live_balances(client: redis.Redis) -> dict[str, int]:
    """The balances maintained as events were appended."""
    return {k.decode(): int(v) for k, v in client.hgetall(LIVE_BALANCES).items()}


class Accounts:
    def __init__(self, client: redis.Redis, publisher: Publisher, users_publisher: Publisher):
        self._client = client
        self._publisher = publisher
        self._users = users_publisher
        self.appended = 0
        self._appending = threading.Lock()

    def sign_up(self, user: dict) -> None:
        """A new customer: a thin UserSignedUp, then the account is opened with a welcome credit."""
        user_id = user["user_id"]
        signed_up = self._users.entity_event(
            USERS_CHANNEL, USER_SIGNED_UP, {"user_id": user_id}, user_id, schema_uri(USER_SIGNED_UP, 1)
        )
        self._users.publish(USERS_CHANNEL, signed_up)
        self._append(ACCOUNT_OPENED, {"account_id": user_id})
        self._append(DEPOSIT_MADE, {"account_id": user_id, "amount_cents": WELCOME_CREDIT_CENTS})

    def top_up(self, command: dict) -> None:
        self._append(DEPOSIT_MADE, {"account_id": command["user_id"], "amount_cents": command["amount_cents"]})

    def handle(self, channel: str, event: dict, span: trace.Span) -> str:
        if event["type"] == PAYMENT_CAPTURED:
            data = event["data"]
            self._append(
                WITHDRAWAL_MADE,
                {"account_id": data["user_id"], "amount_cents": data["amount_cents"], "order_id": data["order_id"]},
            )
        return "processed"

    def _append(self, event_type: str, data: dict) -> None:
        """Append to the event store and move the live balance in one transaction, then publish.

        Commands (the storefront's thread) and withdrawals (the consumer's) both append: one at a time,
        so each stream's sequence numbers reach the store and the bus in the order they were given.
        """
        with self._appending:
            self._append_one(event_type, data)

    def _append_one(self, event_type: str, data: dict) -> None:
        account = data["account_id"]
        amount = int(data.get("amount_cents", 0))
        event = self._publisher.entity_event(CHANNEL, event_type, data, account, schema_uri(event_type, 1))
        pipe = self._client.pipeline(transaction=True)
        fields = {"type": event_type, "account_id": account, "amount_cents": amount, "event": json.dumps(event)}
        pipe.xadd(EVENT_STORE, fields)
        if event_type == ACCOUNT_OPENED:
            pipe.hsetnx(LIVE_BALANCES, account, 0)
        elif event_type == DEPOSIT_MADE:
            pipe.hincrby(LIVE_BALANCES, account, amount)
        else:
            pipe.hincrby(LIVE_BALANCES, account, -amount)
            wallet.release_hold(pipe, account, amount)
        pipe.execute()
        self.appended += 1
        self._publisher.publish(CHANNEL, event)
