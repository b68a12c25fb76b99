"""Decode OTLP trace exports (protobuf or JSON) into span rows for the store.

Rows follow the OpenTelemetry Collector ClickHouse exporter's ``otel_traces`` columns, plus a few
messaging columns extracted once at ingest (ClickHouse would call them materialized columns) so
that analyses never parse JSON per query. Pure: bytes in, rows out.
"""

from __future__ import annotations

import base64
import json

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors import conventions as cv

SPAN_COLUMNS = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events",
    "Links",
    "MsgSystem",
    "MsgOperation",
    "MsgDestination",
    "MsgMessageId",
    "MsgConsumerGroup",
    "CeSource",
    "CeType",
    "Sequence",
    "PartitionKey",
    "Outcome",
    "CeSubject",
    "Attempts",
    "DeadLetterReason",
    "SchemaVersion",
)
SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")


class OtlpDecodeError(ValueError):
    """The body is not a valid OTLP export request; the message says why."""


def _any_value(value) -> object:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def _pb_attrs(key_values) -> dict:
    return {kv.key: _any_value(kv.value) for kv in key_values}


def _json_any_value(value: dict) -> object:
    if not isinstance(value, dict) or not value:
        return None
    (kind, inner), *_ = value.items()
    if kind == "intValue":
        return int(inner)
    if kind == "doubleValue":
        return float(inner)
    if kind == "arrayValue":
        return [_json_any_value(v) for v in (inner or {}).get("values", [])]
    if kind == "kvlistValue":
        return _json_attrs((inner or {}).get("values", []))
    return inner


def _json_attrs(key_values: list) -> dict:
    return {kv["key"]: _json_any_value(kv.get("value", {})) for kv in key_values or []}


def _int_or_none(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def messaging_columns(attrs: dict) -> tuple:
    """The messaging facts the analyses key on, from standard attributes first, ours second."""
    system = attrs.get(cv.MESSAGING_SYSTEM)
    sequence = attrs.get(cv.SEQUENCE)
    partition = attrs.get(cv.PARTITION_KEY)
    if system == "kafka":
        sequence = attrs.get(cv.KAFKA_OFFSET, sequence)
        partition = attrs.get(cv.MESSAGING_PARTITION_ID, partition)
    return (
        _str_or_none(system),
        _str_or_none(attrs.get(cv.MESSAGING_OPERATION_TYPE) or attrs.get(cv.MESSAGING_OPERATION_LEGACY)),
        _str_or_none(attrs.get(cv.MESSAGING_DESTINATION)),
        _str_or_none(attrs.get(cv.MESSAGING_MESSAGE_ID) or attrs.get(cv.CE_ID)),
        _str_or_none(attrs.get(cv.MESSAGING_CONSUMER_GROUP)),
        _str_or_none(attrs.get(cv.CE_SOURCE)),
        _str_or_none(attrs.get(cv.CE_TYPE)),
        _int_or_none(sequence),
        _str_or_none(partition),
        _str_or_none(attrs.get(cv.OUTCOME)),
        _str_or_none(attrs.get(cv.CE_SUBJECT)),
        _int_or_none(attrs.get(cv.ATTEMPTS)),
        _str_or_none(attrs.get(cv.DEAD_LETTER_REASON)),
        _int_or_none(attrs.get(cv.SCHEMA_VERSION)),
    )


def _row(resource: dict, scope: tuple[str, str], span: dict) -> tuple:
    attrs = span["attributes"]
    start, end = span["start"], span["end"]
    return (
        start,
        span["trace_id"],
        span["span_id"],
        span["parent_span_id"],
        span["trace_state"],
        span["name"],
        SPAN_KINDS[span["kind"]] if 0 <= span["kind"] < len(SPAN_KINDS) else "Unspecified",
        str(resource.get("service.name", "unknown_service")),
        json.dumps(resource, default=str),
        scope[0],
        scope[1],
        json.dumps(attrs, default=str),
        max(end - start, 0),
        STATUS_CODES[span["status_code"]] if 0 <= span["status_code"] < len(STATUS_CODES) else "Unset",
        span["status_message"],
        json.dumps(span["events"], default=str),
        json.dumps(span["links"], default=str),
    ) + messaging_columns(attrs)


def _pb_span(span) -> dict:
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "trace_state": span.trace_state,
        "name": span.name,
        "kind": span.kind,
        "start": span.start_time_unix_nano,
        "end": span.end_time_unix_nano,
        "attributes": _pb_attrs(span.attributes),
        "status_code": span.status.code,
        "status_message": span.status.message,
        "events": [
            {"Timestamp": e.time_unix_nano, "Name": e.name, "Attributes": _pb_attrs(e.attributes)} for e in span.events
        ],
        "links": [
            {
                "TraceId": link.trace_id.hex(),
                "SpanId": link.span_id.hex(),
                "TraceState": link.trace_state,
                "Attributes": _pb_attrs(link.attributes),
            }
            for link in span.links
        ],
    }


def decode_protobuf(body: bytes) -> list[tuple]:
    """Decode an ExportTraceServiceRequest in protobuf encoding into rows."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OtlpDecodeError(f"invalid protobuf ExportTraceServiceRequest: {exc}") from None
    rows = []
    for resource_spans in request.resource_spans:
        resource = _pb_attrs(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = (scope_spans.scope.name, scope_spans.scope.version)
            rows.extend(_row(resource, scope, _pb_span(span)) for span in scope_spans.spans)
    return rows


def _hex_id(value: object, size: int, field: str) -> str:
    text = value or ""
    if not isinstance(text, str) or len(text) not in (0, size) or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise OtlpDecodeError(f"{field} must be {size} hex characters")
    return text.lower()


def _json_span(span: dict) -> dict:
    status = span.get("status") or {}
    return {
        "trace_id": _hex_id(span.get("traceId"), 32, "traceId"),
        "span_id": _hex_id(span.get("spanId"), 16, "spanId"),
        "parent_span_id": _hex_id(span.get("parentSpanId"), 16, "parentSpanId"),
        "trace_state": span.get("traceState") or "",
        "name": span.get("name") or "",
        "kind": int(span.get("kind") or 0),
        "start": int(span.get("startTimeUnixNano") or 0),
        "end": int(span.get("endTimeUnixNano") or 0),
        "attributes": _json_attrs(span.get("attributes")),
        "status_code": int(status.get("code") or 0),
        "status_message": status.get("message") or "",
        "events": [
            {
                "Timestamp": int(e.get("timeUnixNano") or 0),
                "Name": e.get("name") or "",
                "Attributes": _json_attrs(e.get("attributes")),
            }
            for e in span.get("events") or []
        ],
        "links": [
            {
                "TraceId": _hex_id(link.get("traceId"), 32, "links.traceId"),
                "SpanId": _hex_id(link.get("spanId"), 16, "links.spanId"),
                "TraceState": link.get("traceState") or "",
                "Attributes": _json_attrs(link.get("attributes")),
            }
            for link in span.get("links") or []
        ],
    }


def decode_json(body: bytes) -> list[tuple]:
    """Decode an ExportTraceServiceRequest in OTLP/JSON encoding (hex ids, camelCase) into rows."""
    try:
        request = json.loads(body)
        rows = []
        for resource_spans in request.get("resourceSpans") or []:
            resource = _json_attrs((resource_spans.get("resource") or {}).get("attributes"))
            for scope_spans in resource_spans.get("scopeSpans") or []:
                scope_info = scope_spans.get("scope") or {}
                scope = (scope_info.get("name") or "", scope_info.get("version") or "")
                rows.extend(_row(resource, scope, _json_span(span)) for span in scope_spans.get("spans") or [])
        return rows
    except OtlpDecodeError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise OtlpDecodeError(f"invalid OTLP/JSON ExportTraceServiceRequest: {exc}") from None
