"""The idempotency guard: a consumer group handles each event once, however often it arrives.

Events are keyed on their CloudEvents identity (source, id) per consumer group. ``claim`` is one
Redis ``SET NX`` with an expiry: the first delivery wins, copies inside the dedupe window are
skipped. A delivery that ends in the dead-letter queue releases its claim so a redrive is handled.
"""

from __future__ import annotations

import redis

KEY_PREFIX = "{sample}:dedupe"
DEFAULT_WINDOW_S = 600  # long enough to cover any redelivery the sample can produce


def dedupe_key(group: str, event: dict) -> str:
    """The guard's key for one (group, source, id)."""
    return f"{KEY_PREFIX}:{group}:{event['source']}:{event['id']}"


class IdempotencyGuard:
    """Remembers, in Redis, which events one consumer group has already taken."""

    def __init__(self, client: redis.Redis, group: str, window_s: int = DEFAULT_WINDOW_S):
        self._client = client
        self.group = group
        self.window_s = window_s

    def claim(self, event: dict) -> str | None:
        """Take the event: None when it is the first delivery, else the key that proves it is a copy."""
        key = dedupe_key(self.group, event)
        first = self._client.set(key, 1, nx=True, ex=self.window_s)
        return None if first else key

    def claim_many(self, events: list[dict]) -> list[str | None]:
        """``claim`` for each event in order, in one round trip (a later copy of an earlier one is a copy)."""
        pipe = self._client.pipeline(transaction=False)
        keys = [dedupe_key(self.group, event) for event in events]
        for key in keys:
            pipe.set(key, 1, nx=True, ex=self.window_s)
        return [None if first else key for key, first in zip(keys, pipe.execute(), strict=True)]

    def release(self, event: dict) -> None:
        """Forget the event, so a later delivery (a redrive) is handled again."""
        self._client.delete(dedupe_key(self.group, event))
