"""Decode OTLP metric exports into rows of one ``otel_metrics`` table.

The OpenTelemetry Collector ClickHouse exporter keeps one table per metric type
(``otel_metrics_gauge``, ``_sum``, ``_histogram``, ``_exponential_histogram``, ``_summary``). Here one
table holds every data point with a ``MetricType`` column, and the store defines a view of each
exporter table over it with the exporter's column names (docs/ingest.md). A data point without a
timestamp is rejected and counted (OTLP partial success).
"""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from collectors.ingest.otlp import Decoded, attributes, parse_request, resource_prefix, to_json
from collectors.storage import schema

METRIC_COLUMNS = schema.METRIC_COLUMNS  # the row contract (collectors/storage/schema.py)
METRIC_TYPES = ("gauge", "sum", "histogram", "exponential_histogram", "summary")
TEMPORALITIES = ("Unspecified", "Delta", "Cumulative")
_NONE_DISTRIBUTION = (None,) * 13  # Count .. ValueAtQuantiles for a gauge or sum point


def _exemplars(point) -> str:
    return to_json(
        [
            {
                "Timestamp": e.time_unix_nano,
                "Value": e.as_double if e.WhichOneof("value") == "as_double" else e.as_int,
                "FilteredAttributes": attributes(e.filtered_attributes),
                "TraceId": e.trace_id.hex(),
                "SpanId": e.span_id.hex(),
            }
            for e in getattr(point, "exemplars", ())
        ]
    )


def _number(point) -> float | None:
    kind = point.WhichOneof("value")
    return None if kind is None else float(getattr(point, kind))


def _optional(point, field: str) -> float | None:
    return getattr(point, field) if point.HasField(field) else None


def _distribution(metric_type: str, point) -> tuple:
    if metric_type in ("gauge", "sum"):
        return _NONE_DISTRIBUTION
    if metric_type == "summary":
        quantiles = to_json([{"Quantile": q.quantile, "Value": q.value} for q in point.quantile_values])
        return (point.count, point.sum) + (None,) * 10 + (quantiles,)
    extremes = (point.count, _optional(point, "sum"), _optional(point, "min"), _optional(point, "max"))
    if metric_type == "histogram":
        return extremes + (list(point.bucket_counts), list(point.explicit_bounds)) + (None,) * 7
    positive, negative = point.positive, point.negative
    return extremes + (
        None,
        None,
        point.scale,
        point.zero_count,
        positive.offset,
        list(positive.bucket_counts),
        negative.offset,
        list(negative.bucket_counts),
        None,
    )


def _point_row(head: tuple, metric_type: str, data, point) -> tuple:
    temporality = getattr(data, "aggregation_temporality", None)
    return (
        head
        + (
            metric_type,
            to_json(attributes(point.attributes)),
            point.start_time_unix_nano,
            point.time_unix_nano,
            _number(point) if metric_type in ("gauge", "sum") else None,
            point.flags,
            _exemplars(point),
            None if temporality is None else TEMPORALITIES[temporality] if temporality < len(TEMPORALITIES) else None,
            getattr(data, "is_monotonic", None),
        )
        + _distribution(metric_type, point)
    )


def metric_rows(request: ExportMetricsServiceRequest) -> Decoded:
    """One row per data point; points without a timestamp are rejected and counted."""
    decoded = Decoded([])
    for resource_metrics in request.resource_metrics:
        service, resource_json = resource_prefix(resource_metrics.resource)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            scope_head = (resource_json, resource_metrics.schema_url, scope.name, scope.version)
            scope_head += (to_json(attributes(scope.attributes)), scope_metrics.schema_url, service)
            for metric in scope_metrics.metrics:
                metric_type = metric.WhichOneof("data")
                if metric_type is None:
                    continue
                data = getattr(metric, metric_type)
                head = scope_head + (metric.name, metric.description, metric.unit)
                for point in data.data_points:
                    if not point.time_unix_nano:
                        decoded.reject("a data point has no time_unix_nano")
                    else:
                        decoded.rows.append(_point_row(head, metric_type, data, point))
    return decoded


def decode_metrics(body: bytes, media_json: bool) -> Decoded:
    """Decode an ExportMetricsServiceRequest body into metric rows."""
    return metric_rows(parse_request(body, media_json, ExportMetricsServiceRequest))
