"""Parse what the bus carries into CloudEvents 1.0 (structured JSON mode), or say why not.

The collectors read events from systems nobody here wrote, so this module follows the CloudEvents
spec and its Distributed Tracing, Sequence and Partitioning extensions, not any producer's code.
"""

from __future__ import annotations

import dataclasses
import json
import re

REQUIRED = ("specversion", "id", "source", "type")
SPECVERSION = "1.0"
# CloudEvents Sequence extension: a string; we require the decimal integer form used by the contract.
_SEQUENCE = re.compile(r"^[0-9]{1,18}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


@dataclasses.dataclass(frozen=True)
class BusEvent:
    """The fields of a valid CloudEvent that the analyses need."""

    id: str
    source: str
    type: str
    subject: str | None
    time: str | None
    sequence: int | None
    partitionkey: str | None
    traceparent: str | None
    dataschema: str | None

    @property
    def trace_id(self) -> str | None:
        match = _TRACEPARENT.match(self.traceparent or "")
        return match.group(1) if match else None


class MalformedEvent(ValueError):
    """The payload claims to be a CloudEvent (it has ``specversion``) and is not a valid one; the message
    is the reason recorded."""


class Unenveloped(ValueError):
    """The payload does not claim to be a CloudEvent: a plain message, counted but without id or sequence."""


EVENT = "event"
UNENVELOPED = "unenveloped"
MALFORMED = "malformed"
KINDS = (EVENT, UNENVELOPED, MALFORMED)
"""What a bus message is: a valid CloudEvent, a message without an envelope, or a broken CloudEvent."""


def _optional_str(event: dict, name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"attribute {name!r} must be a string, got {type(value).__name__}")
    return value


def _sequence(event: dict) -> int | None:
    value = event.get("sequence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MalformedEvent("attribute 'sequence' must be a decimal integer string")
    text = str(value)
    if not _SEQUENCE.match(text):
        raise MalformedEvent(f"attribute 'sequence' must be a decimal integer string, got {text[:40]!r}")
    return int(text)


def parse_event(payload: bytes | str) -> BusEvent:
    """Parse one bus payload into a CloudEvent.

    Raise Unenveloped when the payload does not claim to be one (not JSON, not an object, or no
    ``specversion``), MalformedEvent with a readable reason when it claims to be one and is invalid.
    """
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Unenveloped(f"not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise Unenveloped(f"not a JSON object but a {type(event).__name__}")
    if "specversion" not in event:
        raise Unenveloped("no specversion")
    missing = [name for name in REQUIRED if name not in event]
    if missing:
        raise MalformedEvent("missing required attribute(s): " + ", ".join(missing))
    for name in REQUIRED:
        if not isinstance(event[name], str) or not event[name]:
            raise MalformedEvent(f"attribute {name!r} must be a non-empty string")
    if event["specversion"] != SPECVERSION:
        raise MalformedEvent(f"unsupported specversion {event['specversion'][:20]!r}")
    return BusEvent(
        id=event["id"],
        source=event["source"],
        type=event["type"],
        subject=_optional_str(event, "subject"),
        time=_optional_str(event, "time"),
        sequence=_sequence(event),
        partitionkey=_optional_str(event, "partitionkey"),
        traceparent=_optional_str(event, "traceparent"),
        dataschema=_optional_str(event, "dataschema"),
    )
