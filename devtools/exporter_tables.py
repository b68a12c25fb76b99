"""The clickhouseexporter's side of read mode, for tests and benchmarks: its tables in chdb, and its rows as its Go
code makes them.

``exporter_rows`` follows exporter/clickhouseexporter/exporter_traces.go of opentelemetry-collector-contrib (the
newest version in the reference library: ``pushTraceData`` with ``internal.AttributesToMap`` building an ordered map
of ``pcommon.Value.AsString()``, ``span.Kind().String()``, ``spanStatus.Code().String()``, ``convertEvents``,
``convertLinks``) line by line, and ``exporter_log_rows`` exporter_logs.go's ``pushLogsData``, from the same protobuf
request eventscope's decoder reads. The tables are the exporter's default DDL
(collectors/storage/clickhouse/exporter_ddl.sql), applied verbatim.
"""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import chdb
import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.storage.clickhouse import exporter

DDL_PATH = Path(exporter.__file__).with_name("exporter_ddl.sql")
PIPELINE_DATABASE = "otel"
SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")  # pdata SpanKind.String()
STATUS_CODES = ("Unset", "Ok", "Error")  # pdata StatusCode.String()
SERVICE_NAME = "service.name"


class ChdbClient:
    """The client interface read mode uses (``query_arrow``, ``command``), on chdb in-process."""

    def __init__(self, path: str):
        self.connection = chdb.connect(path)

    def query_arrow(self, sql: str, parameters: dict | None = None) -> pa.Table:
        return self.connection.query(sql, "ArrowTable", params=parameters or {})

    def command(self, sql: str, parameters: dict | None = None) -> None:
        self.connection.query(sql, params=parameters or {})

    def close(self) -> None:
        self.connection.close()


def exporter_statements() -> list[str]:
    """Each CREATE TABLE of the exporter's default DDL, as kept in exporter_ddl.sql."""
    text = DDL_PATH.read_text()
    return [part.strip() for part in re.split(r"^;$", text, flags=re.MULTILINE) if "CREATE TABLE" in part]


def create_pipeline(client: ChdbClient) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS {PIPELINE_DATABASE}")
    for statement in exporter_statements():
        client.command(statement)


# -- pcommon.Value.AsString ---------------------------------------------------------------------------------


def _go_float(value: float) -> str:
    """pcommon's float64AsString: ES6 number formatting (Go's strconv 'f', or 'e' outside [1e-6, 1e21))."""
    if math.isnan(value) or math.isinf(value):
        return "json: unsupported value: " + ("NaN" if math.isnan(value) else "+Inf" if value > 0 else "-Inf")
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    if value != 0 and (abs(value) < 1e-6 or abs(value) >= 1e21):
        mantissa, exponent = repr(value).split("e")
        return f"{mantissa}e{exponent[0]}{exponent[1:].lstrip('0')}"
    return repr(value)


def _raw(value) -> object:
    """pcommon.Value.AsRaw of an AnyValue."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_raw(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _raw(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None if kind is None else getattr(value, kind)


def as_string(value) -> str:
    """pcommon.Value.AsString of an AnyValue."""
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return _go_float(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    # maps and slices: jsoniter of AsRaw (compact; map keys sorted, as encoding/json does)
    return json.dumps(_raw(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def attributes_to_map(key_values) -> list[tuple[str, str]]:
    """internal.AttributesToMap: an ordered map of each attribute's AsString (pcommon.Map keeps one per key)."""
    ordered: dict[str, str] = {}
    for kv in key_values:
        ordered[kv.key] = as_string(kv.value)
    return list(ordered.items())


def _hex_or_empty(identifier: bytes) -> str:
    """traceutil.TraceIDToHexOrEmptyString / SpanIDToHexOrEmptyString: "" for an empty (all-zero) id."""
    return identifier.hex() if any(identifier) else ""


# -- exporter_traces.go pushTraceData -------------------------------------------------------------------------


def exporter_rows(request: ExportTraceServiceRequest) -> list[dict]:
    """One dict per span: the values pushTraceData appends to the batch, by the insert's column names."""
    rows = []
    for resource_spans in request.resource_spans:
        resource_attributes = resource_spans.resource.attributes
        service_name = next((as_string(kv.value) for kv in resource_attributes if kv.key == SERVICE_NAME), "")
        resource_map = attributes_to_map(resource_attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            for span in scope_spans.spans:
                rows.append(_span_row(span, service_name, resource_map, scope.name, scope.version))
    return rows


def _span_row(span, service_name: str, resource_map, scope_name: str, scope_version: str) -> dict:
    events, links = span.events, span.links
    return {
        "Timestamp": span.start_time_unix_nano,
        "TraceId": _hex_or_empty(span.trace_id),
        "SpanId": _hex_or_empty(span.span_id),
        "ParentSpanId": _hex_or_empty(span.parent_span_id),
        "TraceState": span.trace_state,
        "SpanName": span.name,
        "SpanKind": SPAN_KINDS[span.kind],
        "ServiceName": service_name,
        "ResourceAttributes": resource_map,
        "ScopeName": scope_name,
        "ScopeVersion": scope_version,
        "SpanAttributes": attributes_to_map(span.attributes),
        "Duration": (span.end_time_unix_nano - span.start_time_unix_nano) % 2**64,  # pcommon.Timestamp is uint64
        "StatusCode": STATUS_CODES[span.status.code],
        "StatusMessage": span.status.message,
        "Events.Timestamp": [e.time_unix_nano for e in events],
        "Events.Name": [e.name for e in events],
        "Events.Attributes": [attributes_to_map(e.attributes) for e in events],
        "Links.TraceId": [_hex_or_empty(link.trace_id) for link in links],
        "Links.SpanId": [_hex_or_empty(link.span_id) for link in links],
        "Links.TraceState": [link.trace_state for link in links],
        "Links.Attributes": [attributes_to_map(link.attributes) for link in links],
    }


_MAPS = ("ResourceAttributes", "SpanAttributes")
_MAP_LISTS = ("Events.Attributes", "Links.Attributes")


def _arrow(rows: list[dict]) -> pa.Table:
    """The rows as Arrow, each Map as its keys and values (ClickHouse's mapFromArrays keeps their order)."""
    columns: dict[str, list] = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        if name in _MAPS:
            columns[name + "_k"] = [[k for k, _ in m] for m in values]
            columns[name + "_v"] = [[v for _, v in m] for m in values]
        elif name in _MAP_LISTS:
            columns[name + "_k"] = [[[k for k, _ in m] for m in maps] for maps in values]
            columns[name + "_v"] = [[[v for _, v in m] for m in maps] for maps in values]
        else:
            columns[name] = values
    return pa.table({name: pa.array(values, type=_type(name)) for name, values in columns.items()})


_TEXTS = pa.list_(pa.string())


def _type(column: str) -> pa.DataType:
    """Each Arrow column's type, stated: a batch of spans without events would leave the lists' types unknown."""
    if column in ("Duration",):
        return pa.uint64()
    if column in ("Timestamp",):
        return pa.int64()
    if column == "Events.Timestamp":
        return pa.list_(pa.int64())
    if column.endswith(("_k", "_v")):
        return pa.list_(_TEXTS) if column.startswith(_MAP_LISTS) else _TEXTS
    return _TEXTS if column.startswith(("Events.", "Links.")) else pa.string()


def _select_expression(name: str) -> str:
    quoted = f"`{name}`"
    if name in _MAPS:
        return f"mapFromArrays(`{name}_k`, `{name}_v`)"
    if name in _MAP_LISTS:
        return f"arrayMap((k, v) -> mapFromArrays(k, v), `{name}_k`, `{name}_v`)"
    if name == "Timestamp":
        return f"fromUnixTimestamp64Nano({quoted})"
    if name == "Events.Timestamp":
        return f"arrayMap(t -> fromUnixTimestamp64Nano(t), {quoted})"
    return quoted


def insert_spans(client: ChdbClient, request: ExportTraceServiceRequest) -> int:
    """Insert a request's spans into the exporter's otel_traces as the exporter does; how many rows."""
    rows = exporter_rows(request)
    if not rows:
        return 0
    batch = _arrow(rows)  # noqa: F841 (read by chdb's Python() table function, by name)
    names = list(rows[0])
    columns = ", ".join(f"`{name}`" for name in names)
    select = ", ".join(_select_expression(name) for name in names)
    client.command(f"INSERT INTO {PIPELINE_DATABASE}.otel_traces ({columns}) SELECT {select} FROM Python(batch)")
    return len(rows)


# -- exporter_logs.go pushLogsData ----------------------------------------------------------------------------


def exporter_log_rows(request: ExportLogsServiceRequest) -> list[dict]:
    """One dict per log record: the values pushLogsData appends (the record's time, else its observed time)."""
    rows = []
    for resource_logs in request.resource_logs:
        resource_attributes = resource_logs.resource.attributes
        service_name = next((as_string(kv.value) for kv in resource_attributes if kv.key == SERVICE_NAME), "")
        resource = (resource_logs.schema_url, attributes_to_map(resource_attributes))
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            scope_head = (scope_logs.schema_url, scope.name, scope.version, attributes_to_map(scope.attributes))
            for record in scope_logs.log_records:
                rows.append(_log_row(record, service_name, resource, scope_head))
    return rows


def _log_row(record, service_name: str, resource: tuple, scope: tuple) -> dict:
    return {
        "Timestamp": record.time_unix_nano or record.observed_time_unix_nano,
        "TraceId": _hex_or_empty(record.trace_id),
        "SpanId": _hex_or_empty(record.span_id),
        "TraceFlags": record.flags & 0xFF,  # uint8(r.Flags())
        "SeverityText": record.severity_text,
        "SeverityNumber": record.severity_number & 0xFF,  # uint8(r.SeverityNumber())
        "ServiceName": service_name,
        "Body": as_string(record.body),
        "ResourceSchemaUrl": resource[0],
        "ResourceAttributes": resource[1],
        "ScopeSchemaUrl": scope[0],
        "ScopeName": scope[1],
        "ScopeVersion": scope[2],
        "ScopeAttributes": scope[3],
        "LogAttributes": attributes_to_map(record.attributes),
        "EventName": record.event_name,
    }


_LOG_MAPS = ("ResourceAttributes", "ScopeAttributes", "LogAttributes")


def insert_logs(client: ChdbClient, request: ExportLogsServiceRequest) -> int:
    """Insert a request's log records into the exporter's otel_logs as the exporter does; how many rows."""
    rows = exporter_log_rows(request)
    if not rows:
        return 0
    columns: dict[str, pa.Array] = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        if name in _LOG_MAPS:
            columns[name + "_k"] = pa.array([[k for k, _ in m] for m in values], type=_TEXTS)
            columns[name + "_v"] = pa.array([[v for _, v in m] for m in values], type=_TEXTS)
        else:
            columns[name] = pa.array(values, type=pa.int64() if isinstance(values[0], int) else pa.string())
    batch = pa.table(columns)  # noqa: F841 (read by chdb's Python() table function, by name)
    select = ", ".join(
        f"mapFromArrays(`{name}_k`, `{name}_v`)"
        if name in _LOG_MAPS
        else "fromUnixTimestamp64Nano(Timestamp)"
        if name == "Timestamp"
        else f"`{name}`"
        for name in rows[0]
    )
    names = ", ".join(f"`{name}`" for name in rows[0])
    client.command(f"INSERT INTO {PIPELINE_DATABASE}.otel_logs ({names}) SELECT {select} FROM Python(batch)")
    return len(rows)


# -- internal/metrics/*_metrics.go: one table per metric type ------------------------------------------------

METRIC_TABLES = {
    "gauge": "otel_metrics_gauge",
    "sum": "otel_metrics_sum",
    "histogram": "otel_metrics_histogram",
    "exponential_histogram": "otel_metrics_exponential_histogram",
    "summary": "otel_metrics_summary",
}


def _number(point) -> float:
    """getValue: a data point's or exemplar's int or double as float64 (0 when unset)."""
    kind = point.WhichOneof("value")
    return float(getattr(point, kind)) if kind else 0.0


def _exemplars(point) -> dict:
    exemplars = list(getattr(point, "exemplars", ()))
    return {
        "Exemplars.FilteredAttributes": [attributes_to_map(e.filtered_attributes) for e in exemplars],
        "Exemplars.TimeUnix": [e.time_unix_nano for e in exemplars],
        "Exemplars.Value": [_number(e) for e in exemplars],
        "Exemplars.SpanId": [_hex_or_empty(e.span_id) for e in exemplars],
        "Exemplars.TraceId": [_hex_or_empty(e.trace_id) for e in exemplars],
    }


def _point_columns(metric_type: str, data, point) -> dict:
    """The columns each metric type's table adds to the common ones, as its Add/insert code fills them."""
    if metric_type == "summary":
        quantiles = point.quantile_values
        return {
            "Count": point.count,
            "Sum": point.sum,
            "ValueAtQuantiles.Quantile": [q.quantile for q in quantiles],
            "ValueAtQuantiles.Value": [q.value for q in quantiles],
        }
    columns = _exemplars(point)
    if metric_type in ("gauge", "sum"):
        columns["Value"] = _number(point)
        if metric_type == "sum":
            columns["AggregationTemporality"] = data.aggregation_temporality
            columns["IsMonotonic"] = data.is_monotonic
        return columns
    columns.update(Count=point.count, Sum=point.sum, Min=point.min, Max=point.max)
    columns["AggregationTemporality"] = data.aggregation_temporality
    if metric_type == "histogram":
        columns.update(BucketCounts=list(point.bucket_counts), ExplicitBounds=list(point.explicit_bounds))
        return columns
    positive, negative = point.positive, point.negative
    columns.update(Scale=point.scale, ZeroCount=point.zero_count, PositiveOffset=positive.offset)
    columns.update(PositiveBucketCounts=list(positive.bucket_counts), NegativeOffset=negative.offset)
    columns["NegativeBucketCounts"] = list(negative.bucket_counts)
    return columns


def exporter_metric_rows(request: ExportMetricsServiceRequest) -> dict[str, list[dict]]:
    """Rows per metric type: every data point with its resource, scope and metric columns."""
    rows: dict[str, list[dict]] = {metric_type: [] for metric_type in METRIC_TABLES}
    for resource_metrics in request.resource_metrics:
        attributes = resource_metrics.resource.attributes
        service_name = next((as_string(kv.value) for kv in attributes if kv.key == SERVICE_NAME), "")
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            head = {
                "ResourceAttributes": attributes_to_map(attributes),
                "ResourceSchemaUrl": resource_metrics.schema_url,
                "ScopeName": scope.name,
                "ScopeVersion": scope.version,
                "ScopeAttributes": attributes_to_map(scope.attributes),
                "ScopeDroppedAttrCount": scope.dropped_attributes_count,
                "ScopeSchemaUrl": scope_metrics.schema_url,
                "ServiceName": service_name,
            }
            for metric in scope_metrics.metrics:
                metric_type = metric.WhichOneof("data")
                if metric_type is None:
                    continue
                data = getattr(metric, metric_type)
                named = {"MetricName": metric.name, "MetricDescription": metric.description, "MetricUnit": metric.unit}
                for point in data.data_points:
                    rows[metric_type].append(
                        {
                            **head,
                            **named,
                            "Attributes": attributes_to_map(point.attributes),
                            "StartTimeUnix": point.start_time_unix_nano,
                            "TimeUnix": point.time_unix_nano,
                            "Flags": point.flags,
                            **_point_columns(metric_type, data, point),
                        }
                    )
    return rows


_METRIC_MAPS = ("ResourceAttributes", "ScopeAttributes", "Attributes")
_NANO_COLUMNS = ("StartTimeUnix", "TimeUnix")


def _metric_select(name: str) -> str:
    if name in _METRIC_MAPS:
        return f"mapFromArrays(`{name}_k`, `{name}_v`)"
    if name == "Exemplars.FilteredAttributes":
        return f"arrayMap((k, v) -> mapFromArrays(k, v), `{name}_k`, `{name}_v`)"
    if name in _NANO_COLUMNS:
        return f"fromUnixTimestamp64Nano(`{name}`)"
    if name == "Exemplars.TimeUnix":
        return f"arrayMap(t -> fromUnixTimestamp64Nano(t), `{name}`)"
    return f"`{name}`"


def _metric_arrow(rows: list[dict]) -> pa.Table:
    columns: dict[str, list] = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        if name in _METRIC_MAPS:
            columns[name + "_k"] = [[k for k, _ in m] for m in values]
            columns[name + "_v"] = [[v for _, v in m] for m in values]
        elif name == "Exemplars.FilteredAttributes":
            columns[name + "_k"] = [[[k for k, _ in m] for m in maps] for maps in values]
            columns[name + "_v"] = [[[v for _, v in m] for m in maps] for maps in values]
        else:
            columns[name] = values
    return pa.table({name: pa.array(values, type=_metric_type(name, values)) for name, values in columns.items()})


def _metric_type(name: str, values: list) -> pa.DataType:
    """Each Arrow column's type, stated where a value alone cannot say it (empty lists)."""
    if name.endswith(("_k", "_v")):
        return pa.list_(_TEXTS) if name.startswith("Exemplars.") else _TEXTS
    if name in ("Exemplars.TimeUnix", "BucketCounts", "PositiveBucketCounts", "NegativeBucketCounts"):
        return pa.list_(pa.int64())
    if name in ("Exemplars.Value", "ExplicitBounds") or name.startswith("ValueAtQuantiles."):
        return pa.list_(pa.float64())
    if name.startswith("Exemplars."):
        return _TEXTS
    return pa.array(values).type


def insert_metrics(client: ChdbClient, request: ExportMetricsServiceRequest) -> int:
    """Insert a request's data points into the exporter's five metric tables; how many rows."""
    inserted = 0
    for metric_type, rows in exporter_metric_rows(request).items():
        if not rows:
            continue
        batch = _metric_arrow(rows)  # noqa: F841 (read by chdb's Python() table function, by name)
        names = ", ".join(f"`{name}`" for name in rows[0])
        select = ", ".join(_metric_select(name) for name in rows[0])
        table = f"{PIPELINE_DATABASE}.{METRIC_TABLES[metric_type]}"
        client.command(f"INSERT INTO {table} ({names}) SELECT {select} FROM Python(batch)")
        inserted += len(rows)
    return inserted
