"""The store's tables on ClickHouse, generated from collectors/storage/schema.py's ``TABLES``.

Same table names, same columns in the same order. JSON columns are ``String`` (the text the decoders wrote);
a column that may be NULL is ``Nullable``, except lists, which ClickHouse cannot make Nullable: a NULL list is
stored as an empty one. Every time is nanoseconds since the epoch in an ``Int64``, as on DuckDB; partitions
are days of that time.

Engines, keys and partitions follow how the analyses read and how many collectors processes write:

- ``otel_traces`` is a ``ReplacingMergeTree`` ordered by ``(TraceId, SpanId)``: the span's identity is the
  sorting key, so a span stored twice (the same retried export reaching two collectors processes at the same
  moment, past each writer's own check) collapses into one row at the next merge, and ``FINAL`` reads it once
  before that. The trace page and the pairing read whole traces, which that order keeps together; time ranges
  are pruned by the daily partition and a minmax index on ``Timestamp``, message ids by a bloom filter.
- ``span_links`` is a ``ReplacingMergeTree`` on all four of its columns, for the same reason.
- ``bus_messages`` is ordered by arrival (the tap's pages read the newest first), ``otel_logs`` and
  ``otel_metrics`` by service then time (the exporter's own choice), broker stats by time.

Every table fsyncs a part (and its directory) before the insert returns, so an answered insert is on disk as a
committed DuckDB transaction is. No table has a TTL of its own: retention (collectors/storage/clickhouse/engine.py)
keeps DuckDB's rule that the newest trace and the newest row of every table survive, which a TTL cannot.
``ttl`` gives the clause an operator adds for a hard limit on disk.
"""

from __future__ import annotations

import dataclasses

from collectors.storage import schema

_TYPES = {
    "BIGINT": "Int64",
    "INTEGER": "Int32",
    "DOUBLE": "Float64",
    "BOOLEAN": "Bool",
    "VARCHAR": "String",
    "JSON": "String",
    "BIGINT[]": "Array(Int64)",
    "DOUBLE[]": "Array(Float64)",
}


@dataclasses.dataclass(frozen=True)
class Layout:
    """How one table is kept: its engine, sorting key, partition key (a time column's day) and indexes."""

    engine: str
    order_by: str
    time_column: str | None
    indexes: tuple[str, ...] = ()


def _day(column: str) -> str:
    return f"toDate(fromUnixTimestamp64Nano({column}))"


LAYOUTS = {
    "otel_traces": Layout(
        "ReplacingMergeTree",
        "(TraceId, SpanId)",
        "Timestamp",
        (
            "INDEX idx_timestamp Timestamp TYPE minmax GRANULARITY 1",
            "INDEX idx_message_id MsgMessageId TYPE bloom_filter(0.01) GRANULARITY 1",
        ),
    ),
    "span_links": Layout("ReplacingMergeTree", "(TraceId, SpanId, LinkedTraceId, LinkedSpanId)", None),
    "bus_messages": Layout("MergeTree", "(ArrivalNs, ArrivalSeq)", "ArrivalNs"),
    "otel_logs": Layout("MergeTree", "(ServiceName, Timestamp)", "Timestamp"),
    "otel_metrics": Layout("MergeTree", "(ServiceName, MetricName, TimeUnix)", "TimeUnix"),
    "broker_samples": Layout("MergeTree", "(TimeNs)", "TimeNs"),
    "broker_channels": Layout("MergeTree", "(TimeNs, Channel)", "TimeNs"),
    "broker_clients": Layout("MergeTree", "(TimeNs, Id)", "TimeNs"),
}


DURABLE = "fsync_after_insert = 1, fsync_part_directory = 1"
"""An insert returns once its part is on disk, as a DuckDB commit does: the receiver's 200 means stored."""


def column_type(column: schema.Column) -> str:
    """The ClickHouse type of one column of the schema."""
    base = _TYPES[column.base_type]
    nullable = not column.sql.endswith("NOT NULL") and not base.startswith("Array(")
    return f"Nullable({base})" if nullable else base


def create_table(table: str, database: str | None = None, comment: str | None = None) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one table of the schema (in ``database``, a quoted name, when given;
    with ``comment`` as the table's comment)."""
    layout = LAYOUTS[table]
    lines = [f"    `{column.name}` {column_type(column)}" for column in schema.TABLES[table]]
    lines += [f"    {index}" for index in layout.indexes]
    partition = f"\nPARTITION BY {_day(layout.time_column)}" if layout.time_column else ""
    name = f"{database}.{table}" if database else table
    noted = "" if comment is None else " COMMENT '" + comment.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return (
        f"CREATE TABLE IF NOT EXISTS {name} (\n"
        + ",\n".join(lines)
        + f"\n) ENGINE = {layout.engine}{partition}\nORDER BY {layout.order_by}\nSETTINGS {DURABLE}{noted}"
    )


def _views() -> tuple[str, ...]:
    # the same per-type metric views as on DuckDB; ClickHouse spells EXCLUDE as EXCEPT
    statements = schema.VIEWS.replace(" EXCLUDE (", " EXCEPT (").split(";")
    return tuple(" ".join(statement.split()) for statement in statements if statement.strip())


def ttl(table: str, max_age_s: int) -> str:
    """The ``ALTER TABLE`` that gives ``table`` a TTL of ``max_age_s`` on its time column (a hard disk limit)."""
    column = LAYOUTS[table].time_column
    if column is None:
        raise ValueError(f"{table} has no time column")
    return f"ALTER TABLE {table} MODIFY TTL toDateTime(intDiv({column}, 1000000000)) + INTERVAL {int(max_age_s)} SECOND"


STATEMENTS: tuple[str, ...] = (*(create_table(table) for table in schema.TABLES), *_views())
"""Every table and view of the store; idempotent (IF NOT EXISTS / OR REPLACE)."""

MIGRATIONS: tuple[str, ...] = tuple(
    f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS `{column.name}` {column_type(column)}"
    for table, columns in schema.TABLES.items()
    for column in columns
    if column.added
)
"""Columns added after a store format was in use: a store written before them gains them when opened."""
