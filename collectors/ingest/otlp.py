"""Decode OTLP export requests (protobuf or OTLP/JSON) into rows for the store.

Both encodings go through the same protobuf message, so a span sent as JSON becomes exactly the
row it would have become as protobuf. OTLP/JSON differs from protobuf's own JSON mapping only in
its ids (hex, not base64), which are rewritten before parsing. Span rows follow the OpenTelemetry
Collector ClickHouse exporter's ``otel_traces`` columns, plus the canonical messaging facts extracted
once at ingest by collectors/ingest/normalize.py (ClickHouse would call them materialized columns), so that
analyses never parse JSON per query and never see which convention version a span spoke. Spans that
cannot be stored (ids of the wrong size or all zero) are rejected one by one and counted, which is
what the OTLP partial-success answer reports. Pure: bytes in, rows out.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from json import encoder as json_encoder

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from collectors.ingest import normalize, wire
from collectors.ingest.wire import ExportTraceServiceRequest
from collectors.storage import schema

SPAN_COLUMNS = schema.SPAN_COLUMNS  # the row contract; its last columns are the canonical facts (normalize.COLUMNS)
SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
UNKNOWN_SERVICE = "unknown_service"
TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8
EMPTY_JSON_LIST = "[]"
EMPTY_JSON_OBJECT = "{}"
_ZERO_TRACE_ID = bytes(TRACE_ID_BYTES)
_ZERO_SPAN_ID = bytes(SPAN_ID_BYTES)

# OTLP/JSON field names that hold hex ids (spans, links, log records, exemplars).
_HEX_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class OtlpDecodeError(ValueError):
    """The body is not a valid OTLP export request; the message says why."""


@dataclasses.dataclass
class Decoded:
    """Rows to store and how many items were rejected (with the first reason), for partial success."""

    rows: list[tuple]
    rejected: int = 0
    error_message: str = ""
    links: list[tuple] = dataclasses.field(default_factory=list)  # span_links rows of the spans' links

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if not self.error_message:
            self.error_message = reason


def any_value(value) -> object:
    """A plain Python value from an OTLP AnyValue (bytes as base64 text, as OTLP/JSON writes them)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def attributes(key_values) -> dict:
    """A dict from a repeated KeyValue (string values, the common case, without a call per value).

    A non-empty ``string_value`` can only be a string (the other members of the oneof read as ""), so
    only empty ones need asking which member is set.
    """
    return {
        kv.key: text
        if (text := (value := kv.value).string_value) or value.WhichOneof("value") == "string_value"
        else any_value(value)
        for kv in key_values
    }


MAX_KNOWN_ATTRIBUTES = 16_384  # about 8 MiB at most
"""Distinct encoded attributes remembered (wire_attributes); past that the memory starts again empty."""
# An encoded KeyValue -> (key, value), and -> its member of the attributes' JSON object ('"key": value'), for
# values that cannot change. Written and cleared together; a reader that misses one falls back to the slow way.
_KNOWN: dict[bytes, tuple[str, object]] = {}
_KNOWN_JSON: dict[bytes, str] = {}
_IMMUTABLE = {str, int, float, bool, type(None)}
_TEXT_PAIR_TAGS = (0x0A, 0x12, 0x0A)  # KeyValue.key, KeyValue.value, AnyValue.string_value: length-delimited
_ONE_BYTE_LENGTH = 0x80


def _text_pair(encoded: bytes) -> tuple[str, str] | None:
    """(key, text) of a KeyValue encoded the usual way with a string value and short lengths; None otherwise."""
    size = len(encoded)
    if size < 6 or encoded[0] != _TEXT_PAIR_TAGS[0] or encoded[1] >= _ONE_BYTE_LENGTH:
        return None
    at = 2 + encoded[1]
    if size < at + 4 or encoded[at] != _TEXT_PAIR_TAGS[1] or encoded[at + 2] != _TEXT_PAIR_TAGS[2]:
        return None
    length = encoded[at + 3]
    if length >= _ONE_BYTE_LENGTH or encoded[at + 1] != length + 2 or at + 4 + length != size:
        return None
    try:
        return encoded[2:at].decode(), encoded[at + 4 :].decode()
    except UnicodeDecodeError:  # the protobuf runtime says why
        return None


def _key_value(encoded: bytes) -> tuple[str, object]:
    pair = _text_pair(encoded)
    if pair is None:
        try:
            kv = KeyValue.FromString(encoded)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise OtlpDecodeError(f"invalid protobuf ExportTraceServiceRequest: a span attribute: {exc}") from None
        value = kv.value
        text = value.string_value
        pair = (kv.key, text if text or value.WhichOneof("value") == "string_value" else any_value(value))
    if pair[1].__class__ in _IMMUTABLE:
        if len(_KNOWN) >= MAX_KNOWN_ATTRIBUTES:
            _KNOWN.clear()
            _KNOWN_JSON.clear()
        _KNOWN_JSON[encoded] = _json_member(*pair)
        _KNOWN[encoded] = pair
    return pair


def _json_member(key: str, value: object) -> str:
    """``"key": value`` as the encoder writes it inside an object (a text value without the encoder's set-up)."""
    if value.__class__ is str:
        return _ENCODE_TEXT(key) + ": " + _ENCODE_TEXT(value)
    return to_json({key: value})[1:-1]


def wire_attributes(encoded) -> tuple[dict, str]:
    """What ``attributes`` and ``to_json`` give, from encoded KeyValues (collectors/ingest/wire.py): the dict and
    its JSON text. OtlpDecodeError if one is not a KeyValue. Each distinct encoding is read and encoded once while
    it is remembered; the text is then its members joined, which is what the encoder writes for the dict."""
    pairs = list(map(_KNOWN.get, encoded))
    if not all(pairs):
        pairs = [pair or _key_value(item) for pair, item in zip(pairs, encoded, strict=True)]
    attrs = dict(pairs)
    members = list(map(_KNOWN_JSON.get, encoded))
    if len(attrs) == len(members) and all(members):
        return attrs, "{" + ", ".join(members) + "}"
    return attrs, to_json(attrs) if attrs else EMPTY_JSON_OBJECT  # a repeated key, a list or map, or forgotten


def stock_attributes(key_values) -> tuple[dict, str]:
    """``attributes`` and its JSON text, from a stock repeated KeyValue."""
    attrs = attributes(key_values)
    return attrs, to_json(attrs) if attrs else EMPTY_JSON_OBJECT


_JSON = json.JSONEncoder(default=str, allow_nan=False)  # one encoder, not one per call
# The C function json.JSONEncoder.encode builds on every call, built once: the same text without the Python-level
# set-up per value. No circular-reference markers: values decoded from protobuf cannot contain themselves.
_C_ENCODE = (
    json_encoder.c_make_encoder(None, str, json_encoder.encode_basestring_ascii, None, ": ", ", ", False, False, False)
    if json_encoder.c_make_encoder is not None
    else None
)
_ENCODE_TEXT = json_encoder.encode_basestring_ascii  # the function the encoder writes every str with
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # OTLP/JSON's spelling


def _finite_or_text(value: object) -> object:
    if isinstance(value, float):
        return _NON_FINITE.get(repr(value), value)
    if isinstance(value, dict):
        return {key: _finite_or_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_text(item) for item in value]
    return value


def to_json(value: object) -> str:
    """The JSON text kept in a JSON column: strict JSON, a NaN or infinite double as a string ("NaN", ...)."""
    try:
        return "".join(_C_ENCODE(value, 0)) if _C_ENCODE is not None else _JSON.encode(value)
    except ValueError:  # a non-finite float somewhere: rare, so the common case stays one pass
        return _JSON.encode(_finite_or_text(value))


def _hex_to_base64(text: object, field: str) -> str:
    if not isinstance(text, str):
        raise OtlpDecodeError(f"{field} must be a hex string")
    try:
        return base64.b64encode(bytes.fromhex(text)).decode()
    except ValueError:
        raise OtlpDecodeError(f"{field} must be hex characters, got {text[:40]!r}") from None


def _rewrite_hex_ids(node: object) -> None:
    if isinstance(node, list):
        for item in node:
            _rewrite_hex_ids(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _HEX_ID_FIELDS:
                node[key] = _hex_to_base64(value, key)
            elif isinstance(value, list | dict) and key not in ("attributes", "value", "body"):
                _rewrite_hex_ids(value)


def parse_request(body: bytes, media_json: bool, message_type: type[Message]) -> Message:
    """Parse an export request in protobuf or OTLP/JSON encoding; OtlpDecodeError if it is not one."""
    name = message_type.DESCRIPTOR.name
    if media_json and message_type in wire.STOCK:  # JSON has the stock mapping; the wire form is its bytes re-read
        return message_type.FromString(parse_request(body, True, wire.STOCK[message_type]).SerializeToString())
    request = message_type()
    if not media_json:
        try:
            request.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise OtlpDecodeError(f"invalid protobuf {name}: {exc}") from None
        return request
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise OtlpDecodeError(f"invalid OTLP/JSON {name}: expected an object")
        _rewrite_hex_ids(document)
        return json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except OtlpDecodeError:
        raise
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise OtlpDecodeError(f"invalid OTLP/JSON {name}: {exc}") from None


def id_problem(trace_id: bytes, span_id: bytes, parent_span_id: bytes = b"") -> str | None:
    """Why these ids cannot identify a span, or None when they can."""
    if len(trace_id) != TRACE_ID_BYTES or not any(trace_id):
        return f"trace_id must be {TRACE_ID_BYTES} bytes, not all zero"
    if len(span_id) != SPAN_ID_BYTES or not any(span_id):
        return f"span_id must be {SPAN_ID_BYTES} bytes, not all zero"
    if len(parent_span_id) not in (0, SPAN_ID_BYTES):
        return f"parent_span_id must be empty or {SPAN_ID_BYTES} bytes"
    return None


def _plainly_valid(trace_id: bytes, span_id: bytes) -> bool:
    return (
        len(trace_id) == TRACE_ID_BYTES
        and len(span_id) == SPAN_ID_BYTES
        and trace_id != _ZERO_TRACE_ID
        and span_id != _ZERO_SPAN_ID
    )


def _span_problem(span, links) -> str | None:
    trace_id, span_id = span.trace_id, span.span_id
    if not (_plainly_valid(trace_id, span_id) and len(span.parent_span_id) in (0, SPAN_ID_BYTES)):
        problem = id_problem(trace_id, span_id, span.parent_span_id)
        if problem:
            return problem
    for link in links:
        link_trace, link_span = link.trace_id, link.span_id
        if not _plainly_valid(link_trace, link_span):
            problem = id_problem(link_trace, link_span)
            if problem:
                return "a link's " + problem
    return None


def _events_json(events) -> str:
    return to_json(
        [{"Timestamp": e.time_unix_nano, "Name": e.name, "Attributes": attributes(e.attributes)} for e in events]
    )


# A link with no trace state and no attributes (the usual one) as the encoder writes it; hex ids need no escaping.
_PLAIN_LINK_JSON = '{"TraceId": "%s", "SpanId": "%s", "TraceState": "", "Attributes": {}}'


def _links_json(links, ids: list[tuple[str, str]]) -> str:
    if not any(link.trace_state or len(link.attributes) for link in links):
        return "[" + ", ".join([_PLAIN_LINK_JSON % pair for pair in ids]) + "]"
    return to_json(
        [
            {
                "TraceId": trace_id,
                "SpanId": span_id,
                "TraceState": link.trace_state,
                "Attributes": attributes(link.attributes),
            }
            for link, (trace_id, span_id) in zip(links, ids, strict=True)
        ]
    )


def _span_row(
    prefix: tuple,
    scope: tuple,
    span,
    plan: normalize.Plan,
    quirk: normalize.Quirk | None = None,
    links=(),
    link_ids: list[tuple[str, str]] | None = None,
    read: Callable = stock_attributes,
) -> tuple:
    attrs, attrs_json = read(span.attributes)
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    kind, status, events = span.kind, span.status, span.events
    code = status.code
    return (
        start,
        span.trace_id.hex(),
        span.span_id.hex(),
        span.parent_span_id.hex(),
        span.trace_state,
        span.name,
        SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else "Unspecified",
        prefix[0],
        prefix[1],
        scope[0],
        scope[1],
        attrs_json,
        end - start if end > start else 0,
        STATUS_CODES[code] if 0 <= code < len(STATUS_CODES) else "Unset",
        status.message,
        _events_json(events) if events else EMPTY_JSON_LIST,
        _links_json(links, link_ids) if link_ids else EMPTY_JSON_LIST,
    ) + (normalize.facts(attrs, plan, span.name, quirk) if attrs else normalize.NO_FACTS)


def resource_prefix(resource) -> tuple[str, str]:
    """(ServiceName, ResourceAttributes JSON) of one resource."""
    attrs = attributes(resource.attributes)
    return str(attrs.get("service.name", UNKNOWN_SERVICE)), to_json(attrs)


def trace_rows(request: Message) -> Decoded:
    """Span rows of a parsed request, stock or wire-level (collectors/ingest/wire.py); unusable spans are rejected
    and counted. OtlpDecodeError if a wire-level span attribute is not a KeyValue."""
    read = wire_attributes if isinstance(request, ExportTraceServiceRequest) else stock_attributes
    decoded = Decoded([])
    append = decoded.rows.append
    for resource_spans in request.resource_spans:
        prefix = resource_prefix(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            scope = (scope_spans.scope.name, scope_spans.scope.version)
            plan = normalize.plan_for(scope_spans.schema_url or resource_spans.schema_url)
            quirk = normalize.quirk_for(scope[0])
            for span in scope_spans.spans:
                links = span.links
                problem = _span_problem(span, links)
                if problem:
                    decoded.reject(problem)
                    continue
                if not links:
                    append(_span_row(prefix, scope, span, plan, quirk, read=read))
                    continue
                link_ids = [(link.trace_id.hex(), link.span_id.hex()) for link in links]
                row = _span_row(prefix, scope, span, plan, quirk, links, link_ids, read)
                append(row)
                decoded.links.extend((row[1], row[2], *ids) for ids in link_ids)
    return decoded


def decode_traces(body: bytes, media_json: bool) -> Decoded:
    """Decode an ExportTraceServiceRequest body into span rows."""
    return trace_rows(parse_request(body, media_json, ExportTraceServiceRequest))


def decode_protobuf(body: bytes) -> list[tuple]:
    """Span rows of an ExportTraceServiceRequest in protobuf encoding (rejected spans left out)."""
    return decode_traces(body, False).rows


def decode_json(body: bytes) -> list[tuple]:
    """Span rows of an ExportTraceServiceRequest in OTLP/JSON encoding (rejected spans left out)."""
    return decode_traces(body, True).rows
