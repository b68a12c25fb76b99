"""CloudEvents 1.0 envelopes in structured JSON mode, as the event contract (docs/events.md) fixes.

Extensions used: ``traceparent``/``tracestate`` (Distributed Tracing), ``sequence`` (Sequence, a
decimal integer string) and ``partitionkey`` (Partitioning).
"""

from __future__ import annotations

import datetime
import json
import os
import time
import uuid
from typing import Any

SPECVERSION = "1.0"
REQUIRED = ("specversion", "id", "source", "type")
CONTENT_TYPE = "application/json"


class InvalidEnvelope(ValueError):
    """A payload is not a CloudEvent this system accepts; the message says why."""


def uuid7() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version, variant, 74 random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & (2**48 - 1)) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64 | 0b10 << 62 | (rand & (2**62 - 1))
    return str(uuid.UUID(int=value))


def rfc3339_now(skew_s: float = 0.0) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=skew_s)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def build_event(
    *,
    source: str,
    type: str,  # noqa: A002 - the CloudEvents attribute name
    data: Any,
    sequence: int,
    partitionkey: str | None = None,
    subject: str | None = None,
    dataschema: str | None = None,
    event_id: str | None = None,
    time_: str | None = None,
) -> dict:
    """A new CloudEvent dict; trace context is added by the tracing layer, not here."""
    event = {
        "specversion": SPECVERSION,
        "id": event_id or uuid7(),
        "source": source,
        "type": type,
        "time": time_ or rfc3339_now(),
        "datacontenttype": CONTENT_TYPE,
        "sequence": str(sequence),
        "data": data,
    }
    for name, value in (("partitionkey", partitionkey), ("subject", subject), ("dataschema", dataschema)):
        if value is not None:
            event[name] = value
    return event


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def decode(payload: bytes | str) -> dict:
    """Parse and check a payload; raise InvalidEnvelope with the reason."""
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEnvelope(f"not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise InvalidEnvelope("not a JSON object")
    missing = [name for name in REQUIRED if not isinstance(event.get(name), str) or not event.get(name)]
    if missing:
        raise InvalidEnvelope("missing or empty required attribute(s): " + ", ".join(missing))
    if event["specversion"] != SPECVERSION:
        raise InvalidEnvelope(f"unsupported specversion {event['specversion']!r}")
    sequence = event.get("sequence")
    if sequence is not None and not (isinstance(sequence, str) and sequence.isdigit()):
        raise InvalidEnvelope("sequence must be a decimal integer string")
    return event
