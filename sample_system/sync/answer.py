"""The publisher a synchronous call hands to a service: what the service would publish becomes its answer.

The shop's services announce each outcome by publishing an event. Called over HTTP, the same code runs
with an ``Answer`` in place of the publisher: nothing reaches the bus, and the events it would have sent
are returned to the caller, which decides the next step itself.
"""

from __future__ import annotations

from sample_system.bus import Publisher


class Answer(Publisher):
    """Collects the events a service emits during one call instead of publishing them."""

    def __init__(self, source: str):  # no client: nothing is sent anywhere
        self.source = source
        self.emitted: list[dict] = []
        self.published = 0

    def publish(self, channel: str, event: dict) -> int:
        """Keep the event (with its channel) as part of the answer; no receiver heard it."""
        self.emitted.append({**event, "channel": channel})
        self.published += 1
        return 0
