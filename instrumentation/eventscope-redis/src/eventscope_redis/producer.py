"""The producing side: each PUBLISH / SPUBLISH becomes a numbered CloudEvent sent inside a PRODUCER span.

Streams are (channel, source, partition key); this instance is one source, so it numbers each
(channel, partition key) from 1. A re-send of an event id it sent recently on that stream reuses the
sequence, so the copy is a duplicate, not a gap.
"""

from __future__ import annotations

import collections
import threading
import time

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from eventscope_redis import attributes, message, propagation, wire
from eventscope_redis.settings import Settings

RESENT_MEMORY = 10_000  # event ids remembered per producer for re-sends
_DEFAULTS = message.MessageAttributes()  # outside any ``message(...)`` block


class Producer:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._sequences: dict[tuple[str, str | None], int] = collections.defaultdict(int)
        self._sent: collections.OrderedDict[tuple[str, str | None, str], int] = collections.OrderedDict()
        self._lock = threading.Lock()

    def traces(self, channel: str) -> bool:
        return self._settings.traced(channel)

    def sequence(self, channel: str, partitionkey: str | None, event_id: str | None) -> int:
        with self._lock:
            if event_id is not None:
                known = self._sent.get((channel, partitionkey, event_id))
                if known is not None:
                    return known
            self._sequences[(channel, partitionkey)] += 1
            number = self._sequences[(channel, partitionkey)]
            if event_id is not None:
                self._sent[(channel, partitionkey, event_id)] = number
                if len(self._sent) > RESENT_MEMORY:
                    self._sent.popitem(last=False)
            return number

    def numbered(self, channel: str, now_ns: int) -> dict[str, str]:
        """The CloudEvent attributes of a new event on ``channel`` at ``now_ns``, its stream's next number taken."""
        settings = self._settings
        chosen = message.current() or _DEFAULTS
        event = {
            "specversion": wire.SPECVERSION,
            "id": chosen.id or wire.uuid7(now_ns),
            "source": settings.source,
            "type": chosen.type or settings.type_of(channel),
            "time": wire.rfc3339(now_ns),
            "sequence": str(self.sequence(channel, chosen.partitionkey, chosen.id)),
        }
        if chosen is not _DEFAULTS:
            _add_chosen(event, chosen)
        return event

    def begin(self, channel: str, payload: bytes, operation: str) -> tuple[trace.Span, bytes]:
        """Start the PRODUCER span and build the wire message carrying its context."""
        settings = self._settings
        now_ns = time.time_ns()
        event = self.numbered(channel, now_ns)
        span = settings.tracer.start_span(
            f"send {channel}",
            kind=SpanKind.PRODUCER,
            attributes=attributes.producer(channel, operation, event, len(payload)),  # samplers see them
            start_time=now_ns,
        )
        propagation.inject_span(event, span)
        return span, wire.wrap(payload, event, settings.mixed_fleet)

    @staticmethod
    def finish(span: trace.Span, receivers: object = None, error: BaseException | None = None) -> None:
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        elif counts(receivers) and span.is_recording():
            span.set_attribute(attributes.RECEIVERS, receivers)
        span.end()


def counts(receivers: object) -> bool:
    """Whether PUBLISH's answer is a receiver count (an int, not a bool)."""
    return type(receivers) is int or (isinstance(receivers, int) and not isinstance(receivers, bool))


def _add_chosen(event: dict, chosen: message.MessageAttributes) -> None:
    for name in ("partitionkey", "subject", "dataschema"):
        value = getattr(chosen, name)
        if value is not None:
            event[name] = value
