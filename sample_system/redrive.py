"""Redrive: republish a dead letter's original event, unchanged (same id, source, sequence), to its
channel, in a producer span of its own, then remove it from the dead-letter queue."""

from __future__ import annotations

import os
from collections.abc import Callable

from opentelemetry.sdk.trace.export import SpanExporter

from sample_system import telemetry
from sample_system.bus import Publisher
from sample_system.deadletters import DeadLetterQueue, decode_event

SERVICE = "dlq-redrive"


def redrive(
    queue: DeadLetterQueue, entry_id: str, say: Callable[[str], None] = print, exporter: SpanExporter | None = None
) -> int:
    """Republish entry ``entry_id`` (spans go to ``exporter``, default OTLP); returns an exit status (0 = done)."""
    entry = queue.get(entry_id)
    if entry is None:
        say(f"no dead letter {entry_id} in {queue.stream}")
        return 1
    event = decode_event(entry)
    if event is None or "id" not in event:
        say(f"dead letter {entry_id} holds no CloudEvent; nothing to republish")
        return 1
    provider = telemetry.tracer_provider(SERVICE, True, exporter)
    try:
        tracer = provider.get_tracer(telemetry.INSTRUMENTATION_SCOPE)
        publisher = Publisher(queue.client, tracer, f"/sample/{SERVICE}/{os.urandom(2).hex()}")
        receivers = publisher.publish(entry["channel"], event)
    finally:
        telemetry.shutdown([provider])
    queue.remove(entry_id)
    say(f"redriven {entry_id}: event {event['id']} to {entry['channel']} ({receivers} receivers)")
    return 0
