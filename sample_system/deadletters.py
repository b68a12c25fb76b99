"""The dead-letter queue: a Redis Stream of events a consumer group gave up on, and their redrive.

Each entry holds the original event as published, the reason, the attempts made, the consumer
group and the channel, so an operator can read why and ``redrive`` it: republish it, unchanged, to
its channel once the cause is fixed.
"""

from __future__ import annotations

import json
import time

import redis

STREAM = "{sample}:dlq"
MAX_ENTRIES = 10_000  # trimmed approximately: the queue is for inspection, not an archive


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class DeadLetterQueue:
    """Appends to and reads the dead-letter stream."""

    def __init__(self, client: redis.Redis, stream: str = STREAM):
        self.client = client
        self.stream = stream

    def add(self, *, channel: str, group: str, payload: str, reason: str, attempts: int, event_id: str | None) -> str:
        """Append one dead letter; returns its entry id."""
        fields = {
            "event": payload,
            "event_id": event_id or "",
            "channel": channel,
            "group": group,
            "reason": reason,
            "attempts": attempts,
            "time_ns": time.time_ns(),
        }
        return _text(self.client.xadd(self.stream, fields, maxlen=MAX_ENTRIES, approximate=True))

    def entries(self, count: int = 1000) -> list[dict]:
        """The newest ``count`` dead letters, oldest first, as plain dicts."""
        rows = self.client.xrevrange(self.stream, count=count)
        return [self._entry(entry_id, fields) for entry_id, fields in reversed(rows)]

    def get(self, entry_id: str) -> dict | None:
        rows = self.client.xrange(self.stream, min=entry_id, max=entry_id)
        return self._entry(*rows[0]) if rows else None

    def remove(self, entry_id: str) -> None:
        self.client.xdel(self.stream, entry_id)

    @staticmethod
    def _entry(entry_id, fields: dict) -> dict:
        values = {_text(k): _text(v) for k, v in fields.items()}
        return {
            "entry_id": _text(entry_id),
            "event_id": values.get("event_id") or None,
            "channel": values.get("channel"),
            "group": values.get("group"),
            "reason": values.get("reason"),
            "attempts": int(values.get("attempts") or 0),
            "time_ns": int(values.get("time_ns") or 0),
            "event": values.get("event"),
        }


def decode_event(entry: dict) -> dict | None:
    """The original event of an entry, or None when what was dead-lettered was not JSON."""
    try:
        event = json.loads(entry["event"])
    except (TypeError, ValueError):
        return None
    return event if isinstance(event, dict) else None
