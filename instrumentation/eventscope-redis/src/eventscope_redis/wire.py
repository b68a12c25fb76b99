"""The message on the wire: the application's payload inside a CloudEvents 1.0 structured event, and back.

Two forms, both JSON a collector or an uninstrumented subscriber can read:

- envelope (the default): ``{"data": PAYLOAD, "specversion": "1.0", "id": ..., ...}``. ``data`` is the
  first member so that a JSON payload can travel verbatim and be cut back out byte for byte; other text
  travels as a JSON string, anything not UTF-8 as ``data_base64``.
- mixed fleet: a JSON object payload keeps its own keys and gains the attributes after them, so a
  subscriber that was never instrumented still finds its keys where it expects them. Any other payload,
  or an object that already uses an attribute's name, takes the envelope form.

Every wrapped message carries ``wrappedby: eventscope-redis``: only those are unwrapped on receipt, so a
CloudEvent some other producer published reaches the application exactly as it was sent.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import functools
import json
import os
import random
import time

SPECVERSION = "1.0"
MARKER_KEY = "wrappedby"
MARKER = "eventscope-redis"
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
BINARY_TYPE = "application/octet-stream"
RESERVED = frozenset(
    (
        "specversion", "id", "source", "type", "time", "subject", "dataschema", "datacontenttype", "data",
        "data_base64", "sequence", "partitionkey", "traceparent", "tracestate", MARKER_KEY,
    )
)  # fmt: skip
_ENVELOPE_PREFIX = '{"data":'
_BINARY_PREFIX = '{"data_base64":'
_MIXED_MARK = f'"{MARKER_KEY}":"{MARKER}"'
_JSON_START = frozenset('{["-0123456789tfn')
_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()


@dataclasses.dataclass(frozen=True)
class Received:
    """A message as it arrived: what the application sees, and the CloudEvent attributes when there are any."""

    payload: bytes | str
    attributes: dict | None
    wrapped: bool


def uuid7() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version, variant, 74 random bits.

    The random bits come from ``random.getrandbits`` (seeded from the OS at start): ids must be unique,
    not secret, and a system call per message would cost more than the rest of the envelope.
    """
    millis = time.time_ns() // 1_000_000
    rand = _RANDOM.getrandbits(74)
    value = (millis & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62 | (rand & (2**62 - 1))
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_RANDOM = random.Random(os.urandom(16))


@functools.lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def rfc3339(time_ns: int) -> str:
    """RFC 3339 UTC with microseconds; the whole-second part is formatted once per second."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return f"{_second(seconds)}.{nanos // 1000:06d}Z"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_value(text: str) -> object:
    """The parsed payload when ``text`` is strict JSON (no NaN or Infinity), else ``_NOT_JSON``."""
    stripped = text.lstrip(_WHITESPACE)
    if not stripped or stripped[0] not in _JSON_START:
        return _NOT_JSON
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _NOT_JSON


_NOT_JSON = object()


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _members(attributes: dict[str, str]) -> str:
    return _ENCODER.encode(attributes)[1:-1]


def wrap(payload: bytes, attributes: dict[str, str], mixed_fleet: bool = False) -> bytes:
    """The wire form of ``payload`` (bytes as redis-py would send them) carrying ``attributes``."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        data = base64.b64encode(payload).decode("ascii")
        members = _members({**attributes, "datacontenttype": BINARY_TYPE, MARKER_KEY: MARKER})
        return f'{_BINARY_PREFIX}"{data}",{members}}}'.encode()
    value = _json_value(text)
    if value is _NOT_JSON:
        members = _members({**attributes, "datacontenttype": TEXT_TYPE, MARKER_KEY: MARKER})
        return f"{_ENVELOPE_PREFIX}{_ENCODER.encode(text)},{members}}}".encode()
    if mixed_fleet and isinstance(value, dict) and text.endswith("}") and RESERVED.isdisjoint(value):
        members = _members({MARKER_KEY: MARKER, **attributes})
        head = text[:-1]
        return f"{head}{',' if value else ''}{members}}}".encode()
    members = _members({**attributes, "datacontenttype": JSON_TYPE, MARKER_KEY: MARKER})
    return f"{_ENVELOPE_PREFIX}{text},{members}}}".encode()


def unwrap(wire: bytes | str) -> Received:
    """What the application published (same type as ``wire``: bytes, or str with decode_responses)."""
    if isinstance(wire, bytes | bytearray | memoryview):
        try:
            text = bytes(wire).decode("utf-8")
        except UnicodeDecodeError:
            return Received(wire, None, False)
        as_bytes = True
    elif isinstance(wire, str):
        text, as_bytes = wire, False
    else:
        return Received(wire, None, False)
    found = _unwrapped(text)
    if found is None:
        return Received(wire, _foreign_event(text), False)
    payload, attributes = found
    if isinstance(payload, bytes):
        return Received(payload if as_bytes else payload.decode("utf-8", errors="replace"), attributes, True)
    return Received(payload.encode("utf-8") if as_bytes else payload, attributes, True)


def _unwrapped(text: str) -> tuple[bytes | str, dict] | None:
    try:
        if text.startswith(_ENVELOPE_PREFIX):
            return _from_envelope(text)
        if text.startswith(_BINARY_PREFIX):
            return _from_binary(text)
        if _MIXED_MARK in text:
            return _from_mixed(text)
    except (ValueError, TypeError, RecursionError, binascii.Error):
        return None
    return None


def _ours(attributes: object) -> bool:
    return isinstance(attributes, dict) and attributes.get(MARKER_KEY) == MARKER


def _after_value(text: str, start: int) -> tuple[object, int]:
    """The JSON value starting at ``start`` (whitespace allowed around it) and the index of the comma after it."""
    index = start
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    value, end = _DECODER.raw_decode(text, index)
    while end < len(text) and text[end] in _WHITESPACE:
        end += 1
    if end >= len(text) or text[end] != ",":
        raise ValueError("no attributes after data")
    return value, end


def _from_envelope(text: str) -> tuple[str, dict] | None:
    start = len(_ENVELOPE_PREFIX)
    value, comma = _after_value(text, start)
    attributes = json.loads("{" + text[comma + 1 :])
    if not _ours(attributes):
        return None
    if attributes.get("datacontenttype") == TEXT_TYPE:
        if not isinstance(value, str):
            return None
        return value, attributes
    return text[start:comma], attributes


def _from_binary(text: str) -> tuple[bytes, dict] | None:
    value, comma = _after_value(text, len(_BINARY_PREFIX))
    attributes = json.loads("{" + text[comma + 1 :])
    if not _ours(attributes) or not isinstance(value, str):
        return None
    return base64.b64decode(value, validate=True), attributes


def _from_mixed(text: str) -> tuple[str, dict] | None:
    mark = text.rfind(_MIXED_MARK)
    attributes = json.loads("{" + text[mark:])
    if not _ours(attributes):
        return None
    head = text[:mark]
    if head.endswith(","):
        head = head[:-1]
    original = head + "}"
    if not isinstance(_json_value(original), dict):
        return None
    return original, attributes


def _foreign_event(text: str) -> dict | None:
    """The attributes of a CloudEvent someone else published (it reaches the application unchanged)."""
    if not text.startswith("{") or '"specversion"' not in text:
        return None
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or event.get("specversion") != SPECVERSION:
        return None
    return {key: value for key, value in event.items() if key not in ("data", "data_base64")}
