"""The store's schema, declared once: each table's columns with their SQL and Arrow types.

The DDL, the column tuples that are the row contract of the decoders (a row is a tuple in this order),
the insert column lists and the Arrow schemas of the write path are all generated from ``TABLES``.
A column added after a store format was in use is marked ``added``: opening an older store adds it
(``MIGRATIONS``); new columns go last, so rows built for the tuple order stay valid.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa

# The Arrow type the write path builds for each SQL base type. 32-bit INTEGER columns are built as
# int64 too: DuckDB narrows them on insert, and the row checker tests every integer against 64 bits.
_ARROW_TYPES = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "BIGINT[]": pa.list_(pa.int64()),
    "DOUBLE[]": pa.list_(pa.float64()),
}


@dataclasses.dataclass(frozen=True)
class Column:
    """One column: its name, its DuckDB type (with NOT NULL), what it holds, whether it came later."""

    name: str
    sql: str
    note: str = ""
    added: bool = False

    @property
    def base_type(self) -> str:
        return self.sql.removesuffix(" NOT NULL")

    @property
    def arrow(self) -> pa.DataType:
        return _ARROW_TYPES[self.base_type]


_OTEL_TRACES = (
    Column("Timestamp", "BIGINT NOT NULL", "span start, ns since the epoch"),
    Column("TraceId", "VARCHAR NOT NULL"),
    Column("SpanId", "VARCHAR NOT NULL"),
    Column("ParentSpanId", "VARCHAR NOT NULL"),
    Column("TraceState", "VARCHAR NOT NULL"),
    Column("SpanName", "VARCHAR NOT NULL"),
    Column("SpanKind", "VARCHAR NOT NULL"),
    Column("ServiceName", "VARCHAR NOT NULL"),
    Column("ResourceAttributes", "JSON NOT NULL"),
    Column("ScopeName", "VARCHAR NOT NULL"),
    Column("ScopeVersion", "VARCHAR NOT NULL"),
    Column("SpanAttributes", "JSON NOT NULL"),
    Column("Duration", "BIGINT NOT NULL", "ns"),
    Column("StatusCode", "VARCHAR NOT NULL"),
    Column("StatusMessage", "VARCHAR NOT NULL"),
    Column("Events", "JSON NOT NULL"),
    Column("Links", "JSON NOT NULL"),
    Column("MsgSystem", "VARCHAR"),
    Column("MsgOperation", "VARCHAR"),
    Column("MsgDestination", "VARCHAR"),
    Column("MsgMessageId", "VARCHAR"),
    Column("MsgConsumerGroup", "VARCHAR"),
    Column("CeSource", "VARCHAR"),
    Column("CeType", "VARCHAR"),
    Column("Sequence", "BIGINT"),
    Column("PartitionKey", "VARCHAR"),
    Column("Outcome", "VARCHAR"),
    Column("CeSubject", "VARCHAR"),
    Column("Attempts", "BIGINT"),
    Column("DeadLetterReason", "VARCHAR"),
    Column("SchemaVersion", "BIGINT"),
    Column(
        "MsgConversationId",
        "VARCHAR",
        "canonical facts from collectors/ingest/normalize.py; new columns go last",
        added=True,
    ),
    Column("MsgRoutingKey", "VARCHAR", added=True),
    Column("DeliveryCount", "BIGINT", "1 = first delivery; NULL when the instrumentation does not say", added=True),
    Column("Redelivered", "BOOLEAN", "the instrumentation marks the delivery as a redelivery", added=True),
    # identity (TraceId, SpanId), kept by the write path (_INSERT_NEW_SPANS), not by an index
)
_SPAN_LINKS = (
    Column("TraceId", "VARCHAR NOT NULL"),
    Column("SpanId", "VARCHAR NOT NULL"),
    Column("LinkedTraceId", "VARCHAR NOT NULL"),
    Column("LinkedSpanId", "VARCHAR NOT NULL"),
    # written only together with the newly stored span it belongs to, so never twice
)
_BUS_MESSAGES = (
    Column("ArrivalNs", "BIGINT NOT NULL", "when the tap received it, ns since the epoch"),
    Column("ArrivalSeq", "BIGINT NOT NULL", "tap receive order within one collectors run"),
    Column("Channel", "VARCHAR NOT NULL"),
    Column("Pattern", "VARCHAR NOT NULL"),
    Column("Size", "INTEGER NOT NULL"),
    Column("Valid", "BOOLEAN NOT NULL"),
    Column("Error", "VARCHAR"),
    Column("EventId", "VARCHAR"),
    Column("Source", "VARCHAR"),
    Column("Type", "VARCHAR"),
    Column("Subject", "VARCHAR"),
    Column("EventTime", "VARCHAR"),
    Column("Sequence", "BIGINT"),
    Column("PartitionKey", "VARCHAR"),
    Column("TraceId", "VARCHAR"),
    Column("Payload", "VARCHAR NOT NULL"),
    Column("Kind", "VARCHAR", "event | unenveloped | malformed (collectors/bus/cloudevents.py KINDS)", added=True),
)
_OTEL_LOGS = (
    Column("Timestamp", "BIGINT NOT NULL", "ns; the observed time when the record has none"),
    Column("ObservedTimestamp", "BIGINT NOT NULL"),
    Column("TraceId", "VARCHAR NOT NULL"),
    Column("SpanId", "VARCHAR NOT NULL"),
    Column("TraceFlags", "INTEGER NOT NULL"),
    Column("SeverityText", "VARCHAR NOT NULL"),
    Column("SeverityNumber", "INTEGER NOT NULL"),
    Column("ServiceName", "VARCHAR NOT NULL"),
    Column("Body", "VARCHAR NOT NULL", "a string body as is, any other value as JSON"),
    Column("ResourceSchemaUrl", "VARCHAR NOT NULL"),
    Column("ResourceAttributes", "JSON NOT NULL"),
    Column("ScopeSchemaUrl", "VARCHAR NOT NULL"),
    Column("ScopeName", "VARCHAR NOT NULL"),
    Column("ScopeVersion", "VARCHAR NOT NULL"),
    Column("ScopeAttributes", "JSON NOT NULL"),
    Column("LogAttributes", "JSON NOT NULL"),
    Column("EventName", "VARCHAR NOT NULL"),
)
_OTEL_METRICS = (
    Column("ResourceAttributes", "JSON NOT NULL"),
    Column("ResourceSchemaUrl", "VARCHAR NOT NULL"),
    Column("ScopeName", "VARCHAR NOT NULL"),
    Column("ScopeVersion", "VARCHAR NOT NULL"),
    Column("ScopeAttributes", "JSON NOT NULL"),
    Column("ScopeSchemaUrl", "VARCHAR NOT NULL"),
    Column("ServiceName", "VARCHAR NOT NULL"),
    Column("MetricName", "VARCHAR NOT NULL"),
    Column("MetricDescription", "VARCHAR NOT NULL"),
    Column("MetricUnit", "VARCHAR NOT NULL"),
    Column("MetricType", "VARCHAR NOT NULL", "gauge | sum | histogram | exponential_histogram | summary"),
    Column("Attributes", "JSON NOT NULL"),
    Column("StartTimeUnix", "BIGINT NOT NULL", "ns"),
    Column("TimeUnix", "BIGINT NOT NULL", "ns"),
    Column("Value", "DOUBLE", "gauge and sum"),
    Column("Flags", "BIGINT NOT NULL"),
    Column("Exemplars", "JSON NOT NULL"),
    Column("AggregationTemporality", "VARCHAR", "sum, histogram, exponential_histogram"),
    Column("IsMonotonic", "BOOLEAN", "sum"),
    Column("Count", "BIGINT", "histogram, exponential_histogram, summary"),
    Column("Sum", "DOUBLE"),
    Column("Min", "DOUBLE"),
    Column("Max", "DOUBLE"),
    Column("BucketCounts", "BIGINT[]", "histogram"),
    Column("ExplicitBounds", "DOUBLE[]"),
    Column("Scale", "INTEGER", "exponential_histogram"),
    Column("ZeroCount", "BIGINT"),
    Column("PositiveOffset", "INTEGER"),
    Column("PositiveBucketCounts", "BIGINT[]"),
    Column("NegativeOffset", "INTEGER"),
    Column("NegativeBucketCounts", "BIGINT[]"),
    Column("ValueAtQuantiles", "JSON", 'summary: [{"Quantile", "Value"}]'),
)
_BROKER_SAMPLES = (
    Column("TimeNs", "BIGINT NOT NULL"),
    Column("NumPat", "BIGINT NOT NULL"),
    Column("Clients", "BIGINT NOT NULL", "INFO clients.connected_clients"),
    Column("PublishCalls", "BIGINT", "INFO commandstats cmdstat_publish calls (cumulative)"),
    Column("OmemMax", "BIGINT NOT NULL", "the largest output buffer of a pub/sub client"),
    Column("Info", "JSON NOT NULL", "INFO stats, clients and memory fields"),
)
_BROKER_CHANNELS = (
    Column("TimeNs", "BIGINT NOT NULL"),
    Column("Channel", "VARCHAR NOT NULL"),
    Column("Subscribers", "BIGINT NOT NULL"),
)
_BROKER_CLIENTS = (
    Column("TimeNs", "BIGINT NOT NULL"),
    Column("Id", "BIGINT NOT NULL"),
    Column("Name", "VARCHAR NOT NULL"),
    Column("Addr", "VARCHAR NOT NULL"),
    Column("Sub", "BIGINT NOT NULL"),
    Column("Psub", "BIGINT NOT NULL"),
    Column("Omem", "BIGINT NOT NULL"),
    Column("LimitBytes", "BIGINT", "client-output-buffer-limit pubsub hard limit; NULL when 0 (none)"),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "otel_traces": _OTEL_TRACES,
    "span_links": _SPAN_LINKS,
    "bus_messages": _BUS_MESSAGES,
    "otel_logs": _OTEL_LOGS,
    "otel_metrics": _OTEL_METRICS,
    "broker_samples": _BROKER_SAMPLES,
    "broker_channels": _BROKER_CHANNELS,
    "broker_clients": _BROKER_CLIENTS,
}
_TABLE_NOTES = {
    "span_links": "One row per span link, so links can be followed in both directions without parsing JSON.",
    "otel_metrics": "One table for every metric type; the ClickHouse exporter's per-type tables are views below.",
    "broker_samples": "Broker stats: one sample per poll, with the channels and pub/sub clients seen at that moment.",
}
# The ClickHouse exporter's per-type metric tables, as views of the one table.
VIEWS = """
CREATE OR REPLACE VIEW otel_metrics_gauge AS SELECT * EXCLUDE (MetricType, AggregationTemporality, IsMonotonic,
    Count, Sum, Min, Max, BucketCounts, ExplicitBounds, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts,
    NegativeOffset, NegativeBucketCounts, ValueAtQuantiles) FROM otel_metrics WHERE MetricType = 'gauge';
CREATE OR REPLACE VIEW otel_metrics_sum AS SELECT * EXCLUDE (MetricType, Count, Sum, Min, Max, BucketCounts,
    ExplicitBounds, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts, NegativeOffset, NegativeBucketCounts,
    ValueAtQuantiles) FROM otel_metrics WHERE MetricType = 'sum';
CREATE OR REPLACE VIEW otel_metrics_histogram AS SELECT * EXCLUDE (MetricType, Value, IsMonotonic, Scale, ZeroCount,
    PositiveOffset, PositiveBucketCounts, NegativeOffset, NegativeBucketCounts, ValueAtQuantiles)
    FROM otel_metrics WHERE MetricType = 'histogram';
CREATE OR REPLACE VIEW otel_metrics_exponential_histogram AS SELECT * EXCLUDE (MetricType, Value, IsMonotonic,
    BucketCounts, ExplicitBounds, ValueAtQuantiles) FROM otel_metrics WHERE MetricType = 'exponential_histogram';
CREATE OR REPLACE VIEW otel_metrics_summary AS SELECT * EXCLUDE (MetricType, Value, Exemplars, AggregationTemporality,
    IsMonotonic, Min, Max, BucketCounts, ExplicitBounds, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts,
    NegativeOffset, NegativeBucketCounts) FROM otel_metrics WHERE MetricType = 'summary';
"""


def names(table: str) -> tuple[str, ...]:
    """The column names of ``table`` in order: the row contract (a row is a tuple in this order)."""
    return tuple(column.name for column in TABLES[table])


# Tables whose JSON columns only ever hold text written by the OTLP decoders' JSON encoder
# (collectors/ingest/otlp.py ``to_json``: strict JSON by construction). Their batches carry those columns as
# Arrow's JSON extension type, which DuckDB stores as JSON without parsing each text again (the cast from
# VARCHAR would); the stored text is the same. Other tables' JSON columns are checked by that cast.
ENCODED_JSON_TABLES = ("otel_traces", "otel_metrics", "otel_logs")


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema the write path builds a batch of ``table`` rows with."""
    encoded = table in ENCODED_JSON_TABLES
    return pa.schema(
        [
            (column.name, pa.json_() if encoded and column.base_type == "JSON" else column.arrow)
            for column in TABLES[table]
        ]
    )


def column_list(table: str, prefix: str = "") -> str:
    """``Col1, Col2, ...`` (each with ``prefix``, e.g. ``b.``) for an INSERT or SELECT naming every column."""
    return ", ".join(prefix + name for name in names(table))


def _create_table(table: str) -> str:
    columns = TABLES[table]
    lines = []
    for i, column in enumerate(columns):
        line = f"    {column.name} {column.sql}{',' if i < len(columns) - 1 else ''}"
        lines.append(f"{line:<40}-- {column.note}" if column.note else line)
    note = f"-- {_TABLE_NOTES[table]}\n" if table in _TABLE_NOTES else ""
    return f"{note}CREATE TABLE IF NOT EXISTS {table} (\n" + "\n".join(lines) + "\n);\n"


SCHEMA = "".join(_create_table(table) for table in TABLES) + VIEWS
"""The DDL of every table and view; idempotent (IF NOT EXISTS / OR REPLACE)."""

MIGRATIONS = tuple(
    f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column.name} {column.base_type}"
    for table, columns in TABLES.items()
    for column in columns
    if column.added
)
"""Columns added after a store format was in use: a store written before them gains them when opened."""

SPAN_COLUMNS = names("otel_traces")
LINK_COLUMNS = names("span_links")
BUS_COLUMNS = names("bus_messages")
LOG_COLUMNS = names("otel_logs")
METRIC_COLUMNS = names("otel_metrics")
BROKER_SAMPLE_COLUMNS = names("broker_samples")
BROKER_CHANNEL_COLUMNS = names("broker_channels")
BROKER_CLIENT_COLUMNS = names("broker_clients")
