"""What the shop's steps learn about one delivery as it passes them, kept with the delivery.

eventscope-redis hands every delivery step the same ``Incoming``; its ``state`` carries one ``Handling``,
so the practices (sample_system.bus) and the fault steps (sample_system.faults) agree on one record of
the event, the attempt in progress and how the delivery ended.
"""

from __future__ import annotations

import dataclasses

from eventscope_redis import Incoming

KEY = "sample.handling"
PROCESSED = "processed"
DUPLICATE_SKIPPED = "duplicate_skipped"
DEAD_LETTERED = "dead_lettered"
FAILED = "failed"


@dataclasses.dataclass
class Handling:
    """The event as the handler sees it, the attempt in progress and the outcome so far."""

    event: dict = dataclasses.field(default_factory=dict)
    attempt: int = 0
    attempts: int = 1
    outcome: str = PROCESSED
    dead_letter_reason: str | None = None


def of(incoming: Incoming) -> Handling:
    """The delivery's record (made on first use)."""
    found = incoming.state.get(KEY)
    if found is None:
        found = incoming.state[KEY] = Handling()
    return found
