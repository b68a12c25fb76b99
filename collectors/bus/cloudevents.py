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


def _unicode(name: str, value: str) -> str:
    """``value`` if it is valid Unicode; JSON escapes can spell lone surrogates, which no store can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedEvent(
            f"attribute {name!r} is not valid Unicode: lone surrogate {value[exc.start]!a} at {exc.start}"
        ) from None
    return value


def _optional_str(event: dict, name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"attribute {name!r} must be a string, got {type(value).__name__}")
    return _unicode(name, value)


def _undecodable(payload: bytes | str, reason: str) -> ValueError:
    """JSON that Python will not decode (too deep, a number too long): malformed if it claims to be a
    CloudEvent, as far as can be told without decoding it, otherwise unenveloped."""
    text = payload if isinstance(payload, bytes) else payload.encode("utf-8", "replace")
    if text.lstrip().startswith(b"{") and b'"specversion"' in text:
        return MalformedEvent(reason)
    return Unenveloped(reason)


def _loads(payload: bytes | str) -> object:
    """The decoded JSON, or the reason it cannot be had."""
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unenveloped(f"not JSON: {exc}") from None
    except RecursionError:
        raise _undecodable(payload, "JSON nested too deeply to decode") from None
    except ValueError:  # valid JSON beyond the decoder's limits: an integer of more than 4300 digits
        raise _undecodable(payload, "JSON number too long to decode") from None


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
    ``specversion``), MalformedEvent with a readable reason when it claims to be one and is invalid
    (a string attribute that is not valid Unicode included: the store could not hold it).
    """
    event = _loads(payload)
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
        _unicode(name, event[name])
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
