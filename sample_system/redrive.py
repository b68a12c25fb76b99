"""Redrive: republish a dead letter's original message, byte for byte (same id, source, sequence and trace
context), to its channel, then remove it from the dead-letter queue.

The message goes out as it was first sent, so the consumer spans of the redriven delivery link to the
original PRODUCER span: the trace leads back to the publish whose delivery failed.
"""

from __future__ import annotations

from collections.abc import Callable

from sample_system.deadletters import DeadLetterQueue, decode_event


def redrive(queue: DeadLetterQueue, entry_id: str, say: Callable[[str], None] = print) -> int:
    """Republish entry ``entry_id``; returns an exit status (0 = done)."""
    entry = queue.get(entry_id)
    if entry is None:
        say(f"no dead letter {entry_id} in {queue.stream}")
        return 1
    event = decode_event(entry)
    if event is None or "id" not in event:
        say(f"dead letter {entry_id} holds no CloudEvent; nothing to republish")
        return 1
    receivers = queue.client.publish(entry["channel"], entry["event"])
    queue.remove(entry_id)
    say(f"redriven {entry_id}: event {event['id']} to {entry['channel']} ({receivers} receivers)")
    return 0
