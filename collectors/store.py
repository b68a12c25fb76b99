"""The store: one embedded DuckDB file, written only by the collectors process.

One schema string and a column tuple per table are the row contract. A single writer thread owns
the write path and commits many submitted batches in one transaction (group commit); a submitter
learns that its rows are durable only after that commit, which is what lets the OTLP receiver
answer 200 safely. Span writes are idempotent on (TraceId, SpanId), so a retried export never
counts twice; the check is an anti-join against the stored spans in the batch's start-time range
rather than a primary-key index, whose upkeep grew with the table and dominated the cost of ingest
(a retried span carries the same start time, so the range check is exact). The store never traces
its own writes.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from collectors.logs import LOG_COLUMNS
from collectors.metrics import METRIC_COLUMNS
from collectors.otlp import SPAN_COLUMNS

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS otel_traces (
    Timestamp BIGINT NOT NULL,          -- span start, ns since the epoch
    TraceId VARCHAR NOT NULL,
    SpanId VARCHAR NOT NULL,
    ParentSpanId VARCHAR NOT NULL,
    TraceState VARCHAR NOT NULL,
    SpanName VARCHAR NOT NULL,
    SpanKind VARCHAR NOT NULL,
    ServiceName VARCHAR NOT NULL,
    ResourceAttributes JSON NOT NULL,
    ScopeName VARCHAR NOT NULL,
    ScopeVersion VARCHAR NOT NULL,
    SpanAttributes JSON NOT NULL,
    Duration BIGINT NOT NULL,           -- ns
    StatusCode VARCHAR NOT NULL,
    StatusMessage VARCHAR NOT NULL,
    Events JSON NOT NULL,
    Links JSON NOT NULL,
    MsgSystem VARCHAR,
    MsgOperation VARCHAR,
    MsgDestination VARCHAR,
    MsgMessageId VARCHAR,
    MsgConsumerGroup VARCHAR,
    CeSource VARCHAR,
    CeType VARCHAR,
    Sequence BIGINT,
    PartitionKey VARCHAR,
    Outcome VARCHAR,
    CeSubject VARCHAR,
    Attempts BIGINT,
    DeadLetterReason VARCHAR,
    SchemaVersion BIGINT,
    MsgConversationId VARCHAR,          -- canonical facts from collectors/normalize.py; new columns go last
    MsgRoutingKey VARCHAR,
    DeliveryCount BIGINT,               -- 1 = first delivery; NULL when the instrumentation does not say
    Redelivered BOOLEAN                 -- the instrumentation marks the delivery as a redelivery
    -- identity (TraceId, SpanId), kept by the write path (_INSERT_NEW_SPANS), not by an index
);
-- One row per span link, so links can be followed in both directions without parsing JSON.
CREATE TABLE IF NOT EXISTS span_links (
    TraceId VARCHAR NOT NULL,
    SpanId VARCHAR NOT NULL,
    LinkedTraceId VARCHAR NOT NULL,
    LinkedSpanId VARCHAR NOT NULL
    -- written only together with the newly stored span it belongs to, so never twice
);
CREATE TABLE IF NOT EXISTS bus_messages (
    ArrivalNs BIGINT NOT NULL,          -- when the tap received it, ns since the epoch
    ArrivalSeq BIGINT NOT NULL,         -- tap receive order within one collectors run
    Channel VARCHAR NOT NULL,
    Pattern VARCHAR NOT NULL,
    Size INTEGER NOT NULL,
    Valid BOOLEAN NOT NULL,
    Error VARCHAR,
    EventId VARCHAR,
    Source VARCHAR,
    Type VARCHAR,
    Subject VARCHAR,
    EventTime VARCHAR,
    Sequence BIGINT,
    PartitionKey VARCHAR,
    TraceId VARCHAR,
    Payload VARCHAR NOT NULL,
    Kind VARCHAR                        -- event | unenveloped | malformed (collectors/cloudevents.py KINDS)
);
CREATE TABLE IF NOT EXISTS otel_logs (
    Timestamp BIGINT NOT NULL,          -- ns; the observed time when the record has none
    ObservedTimestamp BIGINT NOT NULL,
    TraceId VARCHAR NOT NULL,
    SpanId VARCHAR NOT NULL,
    TraceFlags INTEGER NOT NULL,
    SeverityText VARCHAR NOT NULL,
    SeverityNumber INTEGER NOT NULL,
    ServiceName VARCHAR NOT NULL,
    Body VARCHAR NOT NULL,              -- a string body as is, any other value as JSON
    ResourceSchemaUrl VARCHAR NOT NULL,
    ResourceAttributes JSON NOT NULL,
    ScopeSchemaUrl VARCHAR NOT NULL,
    ScopeName VARCHAR NOT NULL,
    ScopeVersion VARCHAR NOT NULL,
    ScopeAttributes JSON NOT NULL,
    LogAttributes JSON NOT NULL,
    EventName VARCHAR NOT NULL
);
-- One table for every metric type; the ClickHouse exporter's per-type tables are views below.
CREATE TABLE IF NOT EXISTS otel_metrics (
    ResourceAttributes JSON NOT NULL,
    ResourceSchemaUrl VARCHAR NOT NULL,
    ScopeName VARCHAR NOT NULL,
    ScopeVersion VARCHAR NOT NULL,
    ScopeAttributes JSON NOT NULL,
    ScopeSchemaUrl VARCHAR NOT NULL,
    ServiceName VARCHAR NOT NULL,
    MetricName VARCHAR NOT NULL,
    MetricDescription VARCHAR NOT NULL,
    MetricUnit VARCHAR NOT NULL,
    MetricType VARCHAR NOT NULL,        -- gauge | sum | histogram | exponential_histogram | summary
    Attributes JSON NOT NULL,
    StartTimeUnix BIGINT NOT NULL,      -- ns
    TimeUnix BIGINT NOT NULL,           -- ns
    Value DOUBLE,                       -- gauge and sum
    Flags BIGINT NOT NULL,
    Exemplars JSON NOT NULL,
    AggregationTemporality VARCHAR,     -- sum, histogram, exponential_histogram
    IsMonotonic BOOLEAN,                -- sum
    Count BIGINT,                       -- histogram, exponential_histogram, summary
    Sum DOUBLE,
    Min DOUBLE,
    Max DOUBLE,
    BucketCounts BIGINT[],              -- histogram
    ExplicitBounds DOUBLE[],
    Scale INTEGER,                      -- exponential_histogram
    ZeroCount BIGINT,
    PositiveOffset INTEGER,
    PositiveBucketCounts BIGINT[],
    NegativeOffset INTEGER,
    NegativeBucketCounts BIGINT[],
    ValueAtQuantiles JSON               -- summary: [{"Quantile", "Value"}]
);
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
-- Broker stats: one sample per poll, with the channels and pub/sub clients seen at that moment.
CREATE TABLE IF NOT EXISTS broker_samples (
    TimeNs BIGINT NOT NULL,
    NumPat BIGINT NOT NULL,
    Clients BIGINT NOT NULL,            -- INFO clients.connected_clients
    PublishCalls BIGINT,                -- INFO commandstats cmdstat_publish calls (cumulative)
    OmemMax BIGINT NOT NULL,            -- the largest output buffer of a pub/sub client
    Info JSON NOT NULL                  -- INFO stats, clients and memory fields
);
CREATE TABLE IF NOT EXISTS broker_channels (
    TimeNs BIGINT NOT NULL,
    Channel VARCHAR NOT NULL,
    Subscribers BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS broker_clients (
    TimeNs BIGINT NOT NULL,
    Id BIGINT NOT NULL,
    Name VARCHAR NOT NULL,
    Addr VARCHAR NOT NULL,
    Sub BIGINT NOT NULL,
    Psub BIGINT NOT NULL,
    Omem BIGINT NOT NULL,
    LimitBytes BIGINT                   -- client-output-buffer-limit pubsub hard limit; NULL when 0 (none)
);
"""

BUS_COLUMNS = (
    "ArrivalNs",
    "ArrivalSeq",
    "Channel",
    "Pattern",
    "Size",
    "Valid",
    "Error",
    "EventId",
    "Source",
    "Type",
    "Subject",
    "EventTime",
    "Sequence",
    "PartitionKey",
    "TraceId",
    "Payload",
    "Kind",
)
BROKER_SAMPLE_COLUMNS = ("TimeNs", "NumPat", "Clients", "PublishCalls", "OmemMax", "Info")
BROKER_CHANNEL_COLUMNS = ("TimeNs", "Channel", "Subscribers")
BROKER_CLIENT_COLUMNS = ("TimeNs", "Id", "Name", "Addr", "Sub", "Psub", "Omem", "LimitBytes")

TABLE_COLUMNS = {
    "otel_traces": SPAN_COLUMNS,
    "bus_messages": BUS_COLUMNS,
    "otel_logs": LOG_COLUMNS,
    "otel_metrics": METRIC_COLUMNS,
    "broker_samples": BROKER_SAMPLE_COLUMNS,
    "broker_channels": BROKER_CHANNEL_COLUMNS,
    "broker_clients": BROKER_CLIENT_COLUMNS,
}
_INT_COLUMNS = {
    "Timestamp", "Duration", "Sequence", "Attempts", "SchemaVersion", "DeliveryCount", "ArrivalNs", "ArrivalSeq",
    "Size", "ObservedTimestamp", "TraceFlags", "SeverityNumber", "StartTimeUnix", "TimeUnix", "Flags", "Count", "Scale",
    "ZeroCount", "PositiveOffset", "NegativeOffset", "TimeNs", "NumPat", "Clients", "PublishCalls", "OmemMax",
    "Subscribers", "Id", "Sub", "Psub", "Omem", "LimitBytes",
}  # fmt: skip
_SPECIAL_TYPES = {
    "Valid": pa.bool_(),
    "Redelivered": pa.bool_(),
    "IsMonotonic": pa.bool_(),
    "Value": pa.float64(),
    "Sum": pa.float64(),
    "Min": pa.float64(),
    "Max": pa.float64(),
    "BucketCounts": pa.list_(pa.int64()),
    "PositiveBucketCounts": pa.list_(pa.int64()),
    "NegativeBucketCounts": pa.list_(pa.int64()),
    "ExplicitBounds": pa.list_(pa.float64()),
}


def _arrow_type(column: str) -> pa.DataType:
    if column in _INT_COLUMNS:
        return pa.int64()
    return _SPECIAL_TYPES.get(column, pa.string())


_ARROW_SCHEMAS = {
    table: pa.schema([(name, _arrow_type(name)) for name in columns]) for table, columns in TABLE_COLUMNS.items()
}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# A sum of two columns the analyses compute in BIGINT, which must fit as well: a span's end is start plus duration.
_SUMS_THAT_MUST_FIT = {"otel_traces": ("Timestamp", "Duration")}


def row_checker(table: str) -> Callable[[tuple], str | None]:
    """A check of one row of ``table`` against the store's 64-bit integer columns (and their lists).

    It returns why the row cannot be stored, or None. OTLP times and counts are unsigned 64-bit and
    integer attributes may be any size, so a value past 2^63 - 1 reaches the decoder; checking each
    row there lets the receiver reject that item alone (partial success) instead of failing the
    group commit of every batch that shares it. The INTEGER (32-bit) columns only ever receive
    32-bit protobuf fields, so they need no check.
    """
    schema = _ARROW_SCHEMAS[table]
    scalars = [(i, f.name) for i, f in enumerate(schema) if f.type == pa.int64()]
    lists = [(i, f.name) for i, f in enumerate(schema) if f.type == pa.list_(pa.int64())]
    pair = [schema.get_field_index(name) for name in _SUMS_THAT_MUST_FIT.get(table, ())]

    def problem(row: tuple) -> str | None:
        for i, name in scalars:
            value = row[i]
            if value is not None and not INT64_MIN <= value <= INT64_MAX:
                return f"{name} {value} is out of the 64-bit integer range"
        for i, name in lists:
            values = row[i]
            if values and not (min(values) >= INT64_MIN and max(values) <= INT64_MAX):
                return f"a value of {name} is out of the 64-bit integer range"
        if pair and row[pair[0]] + row[pair[1]] > INT64_MAX:
            return " + ".join(schema.field(i).name for i in pair) + " is out of the 64-bit integer range"
        return None

    return problem


LINK_COLUMNS = ("TraceId", "SpanId", "LinkedTraceId", "LinkedSpanId")
_ARROW_SCHEMAS["span_links"] = pa.schema([(name, pa.string()) for name in LINK_COLUMNS])
# What makes a row the same row: (the time column the anti-join ranges over, the identity columns). A
# span is its (TraceId, SpanId), with its start time, which a retry carries unchanged. Metric points
# and log records carry no id of their own: a metric point is identified as in the OpenTelemetry data
# model, by its series (resource, scope, metric name and type, attributes) and its times; a log record
# by all of its fields. A retried export repeats them exactly, so each is stored once.
_POINT_IDENTITY = ("TimeUnix", "StartTimeUnix", "ServiceName", "MetricName", "MetricType", "Attributes")
_IDENTITY = {
    "otel_traces": ("Timestamp", ("Timestamp", "TraceId", "SpanId")),
    "otel_metrics": ("TimeUnix", (*_POINT_IDENTITY, "ResourceAttributes", "ScopeName", "ScopeVersion")),
    "otel_logs": ("Timestamp", LOG_COLUMNS),
}


def _identity_key(table: str) -> Callable[[tuple], tuple]:
    at = [TABLE_COLUMNS[table].index(column) for column in _IDENTITY[table][1]]
    return lambda row: tuple(row[i] for i in at)


# Tables whose rows are keyed: a retried export must not count twice (duplicates within one group
# commit are dropped in Python, those already stored by the anti-joins below).
_KEYED = {
    "otel_traces": lambda row: (row[1], row[2]),  # within one commit, one row per id even if times differ
    "otel_metrics": _identity_key("otel_metrics"),
    "otel_logs": _identity_key("otel_logs"),
    "span_links": lambda row: row,
}
# Table names here are constants of this module, never request values.
_INSERTS = {table: f"INSERT INTO {table} SELECT * FROM _batch" for table in _ARROW_SCHEMAS}
# Only the rows absent among the stored rows in the batch's own time range are inserted. The range
# bounds are the batch's min/max time: zone maps then skip all but the newest row groups, so the check
# costs the same at a million rows as at a thousand.
_INSERT_NEW = {
    table: f"""
INSERT INTO {table}
SELECT b.* FROM _batch b
ANTI JOIN (SELECT {", ".join(columns)} FROM {table} WHERE {time} BETWEEN ? AND ?) s
    ON {" AND ".join(f"s.{c} = b.{c}" for c in columns)}
"""
    for table, (time, columns) in _IDENTITY.items()
}
_INSERT_NEW_SPANS = _INSERT_NEW["otel_traces"] + "RETURNING TraceId, SpanId\n"
_INSERT_LINKS_OF_NEW = """
INSERT INTO span_links
SELECT l.* FROM _batch l SEMI JOIN _new n ON n.TraceId = l.TraceId AND n.SpanId = l.SpanId
"""
# Columns added after a store format was in use: a store written before them gains them when opened.
MIGRATIONS = (
    "ALTER TABLE bus_messages ADD COLUMN IF NOT EXISTS Kind VARCHAR",
    "ALTER TABLE otel_traces ADD COLUMN IF NOT EXISTS MsgConversationId VARCHAR",
    "ALTER TABLE otel_traces ADD COLUMN IF NOT EXISTS MsgRoutingKey VARCHAR",
    "ALTER TABLE otel_traces ADD COLUMN IF NOT EXISTS DeliveryCount BIGINT",
    "ALTER TABLE otel_traces ADD COLUMN IF NOT EXISTS Redelivered BOOLEAN",
)
WRITE_SETTINGS = (
    "SET checkpoint_threshold = '64MiB'",  # fewer checkpoints under steady ingest; the WAL stays small
)


def _insert_batch(cursor, statement: str, batch: pa.Table, parameters: list | None = None) -> list[tuple]:
    cursor.register("_batch", batch)
    returned = cursor.execute(statement, parameters or []).fetchall()
    cursor.unregister("_batch")
    return returned


def _time_range(table: str, batch: pa.Table) -> list:
    bounds = pc.min_max(batch[_IDENTITY[table][0]])
    return [bounds["min"].as_py(), bounds["max"].as_py()]


def _insert_new_spans(cursor, spans: pa.Table, links: pa.Table | None) -> None:
    """Store the spans not stored yet, and the links of exactly those spans."""
    new = _insert_batch(cursor, _INSERT_NEW_SPANS, spans, _time_range("otel_traces", spans))
    if links is None or not new:
        return
    if len(new) == spans.num_rows:  # the usual case: nothing was stored before
        _insert_batch(cursor, _INSERTS["span_links"], links)
        return
    cursor.register("_new", pa.table({"TraceId": [k[0] for k in new], "SpanId": [k[1] for k in new]}))
    _insert_batch(cursor, _INSERT_LINKS_OF_NEW, links)
    cursor.unregister("_new")


def link_rows(span_rows: list[tuple]) -> list[tuple]:
    """span_links rows from the Links JSON of span rows (for rows that did not come with their links)."""
    links_at = SPAN_COLUMNS.index("Links")
    return [
        (row[1], row[2], link["TraceId"], link["SpanId"])
        for row in span_rows
        if row[links_at] != "[]"
        for link in json.loads(row[links_at])
    ]


class StoreBusy(RuntimeError):
    """The write queue is full: the caller should ask its sender to retry later."""


class _Job:
    """Rows for one table, or an action on the writer's cursor; finished after its commit."""

    def __init__(self, tables: dict[str, list[tuple]], action: Callable | None = None):
        self.tables = tables
        self.action = action
        self.result: object = None
        self.error: BaseException | None = None
        self._done = threading.Event()

    def finish(self, error: BaseException | None) -> None:
        self.error = error
        self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the rows are committed; raises the write error if the commit failed."""
        if not self._done.wait(timeout):
            return False
        if self.error is not None:
            raise self.error
        return True


def _arrow_batch(table: str, rows: list[tuple]) -> pa.Table:
    schema = _ARROW_SCHEMAS[table]
    columns = list(zip(*rows, strict=False)) if rows else [()] * len(schema)
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=False)], schema=schema
    )


class Store:
    """The DuckDB file, its writer thread, and read cursors for queries."""

    MAX_JOBS_PER_COMMIT = 64  # batches sharing one commit at most
    GATHER_S = 0.002  # how long the writer waits for more batches before it commits

    def __init__(self, path: str, queue_limit: int = 256, memory_limit: str | None = None):
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._conn = duckdb.connect(path)
        self._conn.execute(SCHEMA)
        for migration in MIGRATIONS:
            self._conn.execute(migration)
        for setting in WRITE_SETTINGS:
            self._conn.execute(setting)
        if memory_limit:
            self._conn.execute(f"SET memory_limit = '{memory_limit}'")  # a validated config value, never a request's
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_limit)
        self._writer = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._writer.start()

    def submit(self, table: str, rows: list[tuple]) -> _Job:
        """Queue rows for the next group commit; raise StoreBusy when the queue is full.

        Span rows get their span_links rows from their Links column.
        """
        if table not in TABLE_COLUMNS:
            raise ValueError(f"unknown table {table!r}")
        tables = {table: rows}
        if table == "otel_traces":
            tables["span_links"] = link_rows(rows)
        return self._enqueue(_Job(tables))

    def submit_tables(self, tables: dict[str, list[tuple]]) -> _Job:
        """Queue rows for several tables, committed together (spans with the span_links rows of their links)."""
        unknown = set(tables) - set(_ARROW_SCHEMAS)
        if unknown:
            raise ValueError(f"unknown tables {sorted(unknown)}")
        return self._enqueue(_Job(tables))

    def submit_action(self, action: Callable[[duckdb.DuckDBPyConnection], object]) -> _Job:
        """Run ``action(cursor)`` on the writer thread in a transaction of its own (retention uses it)."""
        return self._enqueue(_Job({}, action))

    def _enqueue(self, job: _Job) -> _Job:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise StoreBusy("store write queue is full") from None
        return job

    def write(self, table: str, rows: list[tuple], timeout: float = 30.0) -> None:
        """Submit and wait for the commit (used by tests and tools)."""
        if not self.submit(table, rows).wait(timeout):
            raise TimeoutError("store commit did not finish in time")

    def queued(self) -> int:
        """How many jobs wait for the writer."""
        return self._queue.qsize()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for one reader thread; close it when done."""
        return self._conn.cursor()

    def close(self) -> None:
        """Commit what is queued, stop the writer, close the file."""
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._conn.close()

    def _run(self) -> None:
        cursor = self._conn.cursor()
        while True:
            jobs = self._next_group()
            if not jobs:
                break
            if jobs[0].action is not None:
                self._run_action(cursor, jobs[0])
            else:
                self._commit_group(cursor, jobs)
        cursor.close()

    def _next_group(self) -> list[_Job]:
        """The next action alone, or up to MAX_JOBS_PER_COMMIT row jobs; empty when closing.

        After the first row job the writer waits up to GATHER_S for more, so that concurrent senders
        share a commit: one commit of many batches costs much less than many commits of one.
        """
        first = self._queue.get()
        if first is None:
            return []
        jobs = [first]
        deadline = time.monotonic() + self.GATHER_S
        while first.action is None and len(jobs) < self.MAX_JOBS_PER_COMMIT:
            job = self._peek(deadline - time.monotonic())
            if job is None or job.action is not None:
                break
            jobs.append(self._queue.get_nowait())
        return jobs

    def _peek(self, timeout: float) -> _Job | None:
        """The job at the head of the queue without taking it, waiting up to ``timeout``; None if none."""
        with self._queue.not_empty:
            if timeout > 0 and not self._queue._qsize():
                self._queue.not_empty.wait(timeout)
            return self._queue.queue[0] if self._queue._qsize() else None

    def _run_action(self, cursor, job: _Job) -> None:
        cursor.execute("BEGIN TRANSACTION")
        try:
            job.result = job.action(cursor)
            cursor.execute("COMMIT")
        except Exception as exc:
            cursor.execute("ROLLBACK")
            log.exception("store action failed")
            job.finish(exc)
            return
        job.finish(None)

    def _commit_group(self, cursor, jobs: list[_Job]) -> None:
        try:
            self._commit(cursor, jobs)
        except Exception:  # one bad job must not fail the good ones: retry each alone
            log.exception("group commit failed; committing %d jobs one by one", len(jobs))
            for job in jobs:
                try:
                    self._commit(cursor, [job])
                except Exception as exc:
                    job.finish(exc)
                else:
                    job.finish(None)
            return
        for job in jobs:
            job.finish(None)

    def _commit(self, cursor, jobs: list[_Job]) -> None:
        by_table: dict[str, list[tuple]] = {}
        for job in jobs:
            for table, rows in job.tables.items():
                by_table.setdefault(table, []).extend(rows)
        for table, key in _KEYED.items():
            if table in by_table:
                by_table[table] = list({key(row): row for row in by_table[table]}.values())
        batches = {table: _arrow_batch(table, rows) for table, rows in by_table.items() if rows}
        cursor.execute("BEGIN TRANSACTION")
        try:
            spans, links = batches.pop("otel_traces", None), batches.pop("span_links", None)
            if spans is not None:
                _insert_new_spans(cursor, spans, links)
            elif links is not None:
                batches["span_links"] = links
            for table, batch in batches.items():
                if table in _INSERT_NEW:
                    _insert_batch(cursor, _INSERT_NEW[table], batch, _time_range(table, batch))
                else:
                    _insert_batch(cursor, _INSERTS[table], batch)
            cursor.execute("COMMIT")
        except Exception:
            cursor.execute("ROLLBACK")  # unregistering needs a live transaction
            for name in ("_batch", "_new"):
                cursor.unregister(name)
            raise
