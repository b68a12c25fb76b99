"""The message on the wire: the application's payload inside a CloudEvents 1.0 structured event, and back.

Two forms, both JSON a collector or an uninstrumented subscriber can read:

- envelope (the default): ``{"specversion": "1.0", "id": ..., ..., "wrappedby": "eventscope-redis",
  "data": PAYLOAD}``. The attributes come first and ``data`` last, so that a JSON payload travels
  verbatim and is cut back out byte for byte without being parsed again; other text travels as a JSON
  string, anything not UTF-8 as ``data_base64``.
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
from typing import NamedTuple

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
_JSON_START = frozenset('{["-0123456789tfn')
_WHITESPACE = " \t\n\r"


class Received(NamedTuple):
    """A message as it arrived: what the application sees, and the CloudEvent attributes when there are any.

    A named tuple: one is built per delivery, and a frozen dataclass costs several times more to build.
    """

    payload: bytes | str
    attributes: dict | None
    wrapped: bool


def uuid7(time_ns: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version, variant, 74 random bits.

    The random bits come from ``random.getrandbits`` (seeded from the OS at start): ids must be unique,
    not secret, and a system call per message would cost more than the rest of the envelope. A caller
    that has just read the clock passes its ``time_ns``.
    """
    millis = (time.time_ns() if time_ns is None else time_ns) // 1_000_000
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
    """The parsed payload when ``text`` is strict JSON (no NaN or Infinity), else ``_NOT_JSON``.

    What ``JSONDecoder.decode`` does, less its two Python frames: the C scanner reads one value, and only
    whitespace may follow it.
    """
    stripped = text.lstrip(_WHITESPACE)
    if not stripped or stripped[0] not in _JSON_START:
        return _NOT_JSON
    try:
        value, end = _STRICT_SCAN(stripped, 0)
    except (StopIteration, ValueError, RecursionError):
        return _NOT_JSON
    if end != len(stripped) and stripped[end:].strip(_WHITESPACE):
        return _NOT_JSON
    return value


_NOT_JSON = object()
_STRICT = json.JSONDecoder(parse_constant=_reject_constant)  # built once: json.loads(..., **kw) builds one per call
_STRICT_SCAN = _STRICT.scan_once
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@functools.lru_cache(maxsize=64)
def _name(key: str) -> str:
    return f"{_quoted(key)}:"


def _quoted(value: object) -> str:
    return _QUOTE(value) if type(value) is str else _ENCODER.encode(value)


_QUOTE = json.encoder.encode_basestring  # what _ENCODER does to a str (ensure_ascii=False), one call per value
_NAMES = {key: _name(key) for key in RESERVED}  # the attributes an event has, quoted once: a lookup, not a call


def _members(attributes: dict[str, str]) -> str:
    """``attributes`` as JSON object members, without the braces (as ``_ENCODER`` would write them)."""
    names = _NAMES
    return ",".join(
        [
            (names.get(key) or _name(key)) + (_QUOTE(value) if type(value) is str else _quoted(value))
            for key, value in attributes.items()
        ]
    )


def wrap(payload: bytes, attributes: dict[str, str], mixed_fleet: bool = False) -> bytes:
    """The wire form of ``payload`` (bytes as redis-py would send them) carrying ``attributes``.

    ``attributes`` starts with ``specversion`` (the envelope form is recognised by its first member).
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return f'{_opening(attributes, BINARY_TYPE)},{_STR.binary}"'.encode() + base64.b64encode(payload) + b'"}'
    value = _json_value(text)
    if value is _NOT_JSON:
        return f"{_opening(attributes, TEXT_TYPE)},{_STR.data}{_ENCODER.encode(text)}}}".encode()
    if mixed_fleet and isinstance(value, dict) and text.endswith("}") and RESERVED.isdisjoint(value):
        members = _members({MARKER_KEY: MARKER, **attributes})
        return f"{text[:-1]}{',' if value else ''}{members}}}".encode()
    return f"{_opening(attributes, JSON_TYPE)},{_STR.data}".encode() + payload + b"}"


def _opening(attributes: dict[str, str], content_type: str) -> str:
    """``{`` and the attributes, ``datacontenttype`` last: an envelope up to its marker and data."""
    if "datacontenttype" in attributes:  # not from our producer; given its place, as a dict update would
        return "{" + _members({**attributes, "datacontenttype": content_type})
    return "{" + _members(attributes) + _CONTENT_TYPES[content_type]


_CONTENT_TYPES = {kind: f',"datacontenttype":"{kind}"' for kind in (JSON_TYPE, TEXT_TYPE, BINARY_TYPE)}


@dataclasses.dataclass(frozen=True)
class _Marks:
    """The byte sequences that find a wrapped message's parts, as str or as bytes (decode_responses or not)."""

    envelope: str | bytes  # how every envelope starts
    data: str | bytes  # the marker, then the data; data is the last member
    binary: str | bytes
    marker_end: str | bytes  # closes the attributes cut before the data
    mixed: str | bytes  # where the attributes added beside an object's own keys start
    open: str | bytes
    close: str | bytes
    specversion: str | bytes

    @classmethod
    def of(cls, kind: type) -> _Marks:
        marker = f'"{MARKER_KEY}":"{MARKER}"'
        texts = (
            '{"specversion":"1.0",', marker + ',"data":', marker + ',"data_base64":', marker + "}",
            marker + ',"specversion":"1.0"',
            "{", "}", '"specversion"',
        )  # fmt: skip
        return cls(*(t if kind is str else t.encode() for t in texts))


_STR = _Marks.of(str)
_BYTES = _Marks.of(bytes)


def unwrap(wire: bytes | str) -> Received:
    """What the application published (same type as ``wire``: bytes, or str with decode_responses)."""
    if isinstance(wire, bytearray | memoryview):
        wire = bytes(wire)
    if isinstance(wire, bytes):
        marks = _BYTES
    elif isinstance(wire, str):
        marks = _STR
    else:
        return Received(wire, None, False)
    try:
        found = _unwrapped(wire, marks)
    except (ValueError, TypeError, RecursionError, binascii.Error):
        found = None
    if found is None:
        return Received(wire, _foreign_event(wire, marks), False)
    return Received(found[0], found[1], True)


def _unwrapped(wire: bytes | str, marks: _Marks) -> tuple[bytes | str, dict] | None:
    if wire.startswith(marks.envelope) and wire.endswith(marks.close):
        return _from_envelope(wire, marks)
    if marks.mixed in wire and wire.endswith(marks.close):
        return _from_mixed(wire, marks)
    return None


def _ours(attributes: object) -> bool:
    return isinstance(attributes, dict) and attributes.get(MARKER_KEY) == MARKER


def _from_envelope(wire: bytes | str, marks: _Marks) -> tuple[bytes | str, dict] | None:
    """Attributes come first and hold strings only, so the first marker is ours and the data follows it."""
    at = wire.find(marks.data)
    if at >= 0:
        attributes = _head(wire[:at] + marks.marker_end)
        raw = wire[at + len(marks.data) : -1]
        if not _ours(attributes) or not raw:
            return None
        if attributes.get("datacontenttype") != TEXT_TYPE:
            return raw, attributes
        text = json.loads(raw)
        if not isinstance(text, str):
            return None
        return (text.encode("utf-8") if isinstance(wire, bytes) else text), attributes
    at = wire.find(marks.binary)
    if at < 0:
        return None
    attributes = _head(wire[:at] + marks.marker_end)
    data = json.loads(wire[at + len(marks.binary) : -1])
    if not _ours(attributes) or not isinstance(data, str):
        return None
    payload = base64.b64decode(data, validate=True)
    return (payload if isinstance(wire, bytes) else payload.decode("utf-8", errors="replace")), attributes


def _head(members: bytes | str) -> object:
    """The envelope's attributes: json.loads, less its encoding detection (an envelope starts with ``{"``) and
    its Python frames (the C scanner reads the object, which must end where the attributes end)."""
    text = members.decode("utf-8", "surrogatepass") if type(members) is bytes else members
    try:
        value, end = _PLAIN_SCAN(text, 0)
    except StopIteration as stop:
        raise ValueError(f"no JSON value at {stop.value}") from None
    if end != len(text):
        raise ValueError(f"extra data at {end}")
    return value


_PLAIN_SCAN = json.JSONDecoder().scan_once


def _from_mixed(wire: bytes | str, marks: _Marks) -> tuple[bytes | str, dict] | None:
    mark = wire.rfind(marks.mixed)
    attributes = json.loads(marks.open + wire[mark:])
    if not _ours(attributes):
        return None
    head = wire[:mark]
    if head.endswith(b"," if isinstance(wire, bytes) else ","):
        head = head[:-1]
    original = head + marks.close
    text = original.decode("utf-8") if isinstance(original, bytes) else original
    if not isinstance(_json_value(text), dict):
        return None
    return original, attributes


def _foreign_event(wire: bytes | str, marks: _Marks) -> dict | None:
    """The attributes of a CloudEvent someone else published (it reaches the application unchanged)."""
    if not wire.startswith(marks.open) or marks.specversion not in wire:
        return None
    try:
        event = json.loads(wire)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or event.get("specversion") != SPECVERSION:
        return None
    return {key: value for key, value in event.items() if key not in ("data", "data_base64")}
