"""Decode OTLP log exports into ``otel_logs`` rows (the ClickHouse exporter's columns).

A record whose trace or span id has the wrong size cannot be joined to its span; it is rejected and
counted (OTLP partial success) rather than stored with an id that matches nothing.
"""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from collectors.ingest.otlp import (
    SPAN_ID_BYTES,
    TRACE_ID_BYTES,
    Decoded,
    any_value,
    attributes,
    parse_request,
    resource_prefix,
    to_json,
)
from collectors.storage import schema

LOG_COLUMNS = schema.LOG_COLUMNS  # the row contract (collectors/storage/schema.py)


def _body(record) -> str:
    """A string body as is; any other AnyValue as its JSON text."""
    if record.body.WhichOneof("value") == "string_value":
        return record.body.string_value
    value = any_value(record.body)
    return "" if value is None else to_json(value)


def _id_problem(record) -> str | None:
    if len(record.trace_id) not in (0, TRACE_ID_BYTES):
        return f"trace_id must be empty or {TRACE_ID_BYTES} bytes"
    if len(record.span_id) not in (0, SPAN_ID_BYTES):
        return f"span_id must be empty or {SPAN_ID_BYTES} bytes"
    return None


def _record_row(head: tuple, tail: tuple, record) -> tuple:
    return (
        record.time_unix_nano or record.observed_time_unix_nano,
        record.observed_time_unix_nano,
        record.trace_id.hex(),
        record.span_id.hex(),
        record.flags & 0xFF,
        record.severity_text,
        record.severity_number,
        head[0],
        _body(record),
        *head[1:],
        *tail,
        to_json(attributes(record.attributes)),
        record.event_name,
    )


def log_rows(request: ExportLogsServiceRequest) -> Decoded:
    """One row per log record; records with malformed ids are rejected and counted."""
    decoded = Decoded([])
    for resource_logs in request.resource_logs:
        service, resource_json = resource_prefix(resource_logs.resource)
        head = (service, resource_logs.schema_url, resource_json)
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            tail = (scope_logs.schema_url, scope.name, scope.version, to_json(attributes(scope.attributes)))
            for record in scope_logs.log_records:
                problem = _id_problem(record)
                if problem:
                    decoded.reject(problem)
                else:
                    decoded.rows.append(_record_row(head, tail, record))
    return decoded


def decode_logs(body: bytes, media_json: bool) -> Decoded:
    """Decode an ExportLogsServiceRequest body into log rows."""
    return log_rows(parse_request(body, media_json, ExportLogsServiceRequest))
