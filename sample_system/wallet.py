"""The wallet check: whether a customer's balance covers a payment, and the hold that keeps it covered.

Accounts moves a balance only when it appends the withdrawal for a captured payment, a moment after
payments decided, so two payments in a row could both be judged against the same balance. Payments
therefore checks and holds in one atomic step (balance minus what is already held must cover the
amount), and accounts lets the hold go in the same transaction that appends the withdrawal. Balance
minus holds is what can still be spent; it never goes below zero, and neither does a replayed balance.
"""

from __future__ import annotations

import redis

BALANCES = "{sample}:accounts:balances"
"""Live balance per account in cents, moved by accounts with each append to its event store."""
HOLDS = "{sample}:payments:holds"
"""Cents captured per account whose withdrawal accounts has not appended yet."""

HOLD = """
local balance = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local available = balance - held
if available < tonumber(ARGV[2]) then return {0, available} end
redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2])
return {1, available}
"""
"""Hold ``amount`` on an account when its balance less what is held covers it; answers (held?, available)."""


class Wallets:
    """Payments' view of the wallets: check and hold in one step."""

    def __init__(self, client: redis.Redis):
        self._hold = client.register_script(HOLD)

    def hold(self, account: str, amount_cents: int) -> tuple[bool, int]:
        """Hold the amount if the account can pay it; returns (held, cents available before)."""
        held, available = self._hold(keys=[BALANCES, HOLDS], args=[account, amount_cents])
        return bool(held), int(available)


def release_hold(pipe: redis.client.Pipeline, account: str, amount_cents: int) -> None:
    """Queue the end of a hold on ``pipe`` (accounts, in the transaction that appends the withdrawal)."""
    pipe.hincrby(HOLDS, account, -amount_cents)
