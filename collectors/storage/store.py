"""The store: one writer thread with group commit over an engine, by default one embedded DuckDB file.

The schema, declared once in collectors/storage/schema.py, gives the DDL, the column tuples that are the row
contract, the insert column lists and the Arrow types of each batch. A single writer thread owns
the write path and commits many submitted batches in one transaction (group commit); a submitter
learns that its rows are durable only after that commit, which is what lets the OTLP receiver
answer 200 safely. Span writes are idempotent on (TraceId, SpanId), so a retried export never
counts twice; the check is an anti-join against the stored spans in the batch's start-time range
rather than a primary-key index, whose upkeep grew with the table and dominated the cost of ingest
(a retried span carries the same start time, so the range check is exact). The store never traces
its own writes.

The DuckDB-specific part is ``DuckDBEngine``; ``Engine`` is what another engine provides to reuse the same
writer thread and group commit (ClickHouse: collectors/storage/clickhouse/engine.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from operator import itemgetter
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from collectors.storage import pairing, retention, schema, stream_counts
from collectors.storage.reader import Reader
from collectors.storage.schema import LOG_COLUMNS, MIGRATIONS, SCHEMA, SPAN_COLUMNS

log = logging.getLogger(__name__)

_ARROW_SCHEMAS = {table: schema.arrow_schema(table) for table in schema.TABLES}
TABLE_COLUMNS = {table: schema.names(table) for table in schema.TABLES if table != "span_links"}
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
    arrow = _ARROW_SCHEMAS[table]
    scalars = [(i, f.name) for i, f in enumerate(arrow) if f.type == pa.int64()]
    lists = [(i, f.name) for i, f in enumerate(arrow) if f.type == pa.list_(pa.int64())]
    pair = [arrow.get_field_index(name) for name in _SUMS_THAT_MUST_FIT.get(table, ())]

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
            return " + ".join(arrow.field(i).name for i in pair) + " is out of the 64-bit integer range"
        return None

    return problem


def batch_fits(table: str) -> Callable[[list[tuple]], bool]:
    """A quick test that every row of a batch of ``table`` rows fits the store's 64-bit integer columns.

    It looks at whole columns at once (C-level minimum and maximum); True means no row has a problem, so
    ``row_checker`` need not look at each row. False means some row may have one: ``row_checker`` says which.
    """
    arrow = _ARROW_SCHEMAS[table]
    scalars = [itemgetter(i) for i, f in enumerate(arrow) if f.type == pa.int64()]
    lists = [i for i, f in enumerate(arrow) if f.type == pa.list_(pa.int64())]
    pair = [itemgetter(arrow.get_field_index(name)) for name in _SUMS_THAT_MUST_FIT.get(table, ())]

    def fits(rows: list[tuple]) -> bool:
        if lists or not rows:
            return not rows
        for column in scalars:
            values = list(filter(None, map(column, rows)))  # None (and 0) always fit
            if values and not (min(values) >= INT64_MIN and max(values) <= INT64_MAX):
                return False
        # times and durations are never negative, so the largest of each bounds every row's sum
        return not pair or max(map(pair[0], rows)) + max(map(pair[1], rows)) <= INT64_MAX

    return fits


# What makes a row the same row: (the time column the anti-join ranges over, the identity columns). A
# span is its (TraceId, SpanId), with its start time, which a retry carries unchanged. Metric points
# and log records carry no id of their own: a metric point is identified as in the OpenTelemetry data
# model, by its series (resource, scope, metric name and type, attributes) and its times; a log record
# by all of its fields. A retried export repeats them exactly, so each is stored once.
_POINT_IDENTITY = ("TimeUnix", "StartTimeUnix", "ServiceName", "MetricName", "MetricType", "Attributes")
IDENTITY = {
    "otel_traces": ("Timestamp", ("Timestamp", "TraceId", "SpanId")),
    "otel_metrics": ("TimeUnix", (*_POINT_IDENTITY, "ResourceAttributes", "ScopeName", "ScopeVersion")),
    "otel_logs": ("Timestamp", LOG_COLUMNS),
}


def _identity_key(table: str) -> Callable[[tuple], tuple]:
    return itemgetter(*(TABLE_COLUMNS[table].index(column) for column in IDENTITY[table][1]))  # several: a tuple


# Tables whose rows are keyed: a retried export must not count twice (duplicates within one group
# commit are dropped in Python, those already stored by the anti-joins below).
_KEYED = {
    "otel_traces": itemgetter(1, 2),  # within one commit, one row per id even if times differ
    "otel_metrics": _identity_key("otel_metrics"),
    "otel_logs": _identity_key("otel_logs"),
    "span_links": lambda row: row,
}
# Table and column names here are constants of collectors/storage/schema.py, never request values. Every insert
# names its columns, so it never depends on the order of the columns in the table.
_INSERTS = {
    table: f"INSERT INTO {table} ({schema.column_list(table)}) SELECT {schema.column_list(table)} FROM _batch"
    for table in _ARROW_SCHEMAS
}
# Only the rows absent among the stored rows in the batch's own time range are inserted. The range
# bounds are the batch's min/max time: zone maps then skip all but the newest row groups, so the check
# costs the same at a million rows as at a thousand.
_INSERT_NEW = {
    table: f"""
INSERT INTO {table} ({schema.column_list(table)})
SELECT {schema.column_list(table, "b.")} FROM _batch b
ANTI JOIN (SELECT {", ".join(columns)} FROM {table} WHERE {time} BETWEEN ? AND ?) s
    ON {" AND ".join(f"s.{c} = b.{c}" for c in columns)}
"""
    for table, (time, columns) in IDENTITY.items()
}
_INSERT_NEW_SPANS = _INSERT_NEW["otel_traces"] + "RETURNING TraceId, SpanId\n"
_INSERT_LINKS_OF_NEW = f"""
INSERT INTO span_links ({schema.column_list("span_links")})
SELECT {schema.column_list("span_links", "l.")}
FROM _batch l SEMI JOIN _new n ON n.TraceId = l.TraceId AND n.SpanId = l.SpanId
"""
READ_WAIT_S = 120.0  # how long a reader waits for the writer to bring the kept state up to date
WRITE_SETTINGS = (
    "SET checkpoint_threshold = '64MiB'",  # fewer checkpoints under steady ingest; the WAL stays small
)


def _insert_batch(cursor, statement: str, batch: pa.Table, parameters: list | None = None) -> list[tuple]:
    cursor.register("_batch", batch)
    returned = cursor.execute(statement, parameters or []).fetchall()
    cursor.unregister("_batch")
    return returned


def _time_range(table: str, batch: pa.Table) -> list:
    bounds = pc.min_max(batch[IDENTITY[table][0]])
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


class Job:
    """Rows for one table, or an action on the writer's cursor; finished after its commit."""

    def __init__(self, tables: dict[str, list[tuple]], action: Callable | None = None, changes: bool = True):
        self.tables = tables
        self.action = action
        self.changes = changes  # whether its commit can change what a reader sees (``Store.generation``)
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
    arrow = _ARROW_SCHEMAS[table]
    columns = list(zip(*rows, strict=False)) if rows else [()] * len(arrow)
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, arrow, strict=False)], schema=arrow
    )


class Engine(Protocol):
    """What the writer thread and the readers need of the database that holds the store.

    ``Store`` owns the queue, the group commit and the promise that a submitter hears success only after its rows
    are durable; an engine says how one group's batches become durable (``write``), runs actions, keeps the
    writer's state up to date (``refresh``), applies retention and hands out readers. The writer thread calls
    ``writer()`` once and passes that handle to every call it makes.
    """

    name: str
    read_mode: bool
    """The spans, logs and metrics are another pipeline's, read and never written (collectors/storage/spec.py)."""
    sole_writer: bool
    """Only this process writes the store, so its commits are every change a reader can see."""

    def writer(self) -> object:
        """The writer thread's handle (a DuckDB cursor, a ClickHouse client)."""

    def release(self, handle: object) -> None:
        """The writer thread is done with its handle."""

    def write(self, handle: object, batches: dict[str, pa.Table]) -> None:
        """Store one group commit's batches (each table's identity rules applied); return once they are durable."""

    def act(self, handle: object, action: Callable[[object], object]) -> object:
        """Run ``action(handle)`` (on DuckDB in a transaction of its own) and return its result."""

    def refresh(self, handle: object) -> None:
        """Bring the state the writer keeps up to date with every write before (collectors/storage/pairing.py)."""

    def retain(self, handle: object, now_ns: int, max_age_s: float, max_spans: int) -> dict[str, int]:
        """Delete what the retention limits say must go (collectors/storage/retention.py); rows deleted per table."""

    def reader(self) -> Reader:
        """A reader for one thread."""

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB cursor (DuckDB only; tools and tests)."""

    def close(self) -> None:
        """Close the database."""


class DuckDBEngine:
    """The store in one embedded DuckDB file: transactions, anti-joins for identity, the pairing kept by SQL."""

    name = "duckdb"
    read_mode = False
    sole_writer = True

    def __init__(self, path: str, memory_limit: str | None = None):
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._conn = duckdb.connect(path)
        self._conn.execute(SCHEMA)
        for migration in MIGRATIONS:
            self._conn.execute(migration)
        for setting in WRITE_SETTINGS:
            self._conn.execute(setting)
        pairing.ensure(self._conn)
        stream_counts.ensure(self._conn)
        if memory_limit:
            self._conn.execute(f"SET memory_limit = '{memory_limit}'")  # a validated config value, never a request's

    def writer(self) -> duckdb.DuckDBPyConnection:
        return self._conn.cursor()

    def release(self, handle: duckdb.DuckDBPyConnection) -> None:
        handle.close()

    def write(self, handle: duckdb.DuckDBPyConnection, batches: dict[str, pa.Table]) -> None:
        handle.execute("BEGIN TRANSACTION")
        try:
            _write(handle, batches)
            handle.execute("COMMIT")
        except Exception:
            handle.execute("ROLLBACK")  # unregistering needs a live transaction
            for name in ("_batch", "_new"):
                handle.unregister(name)
            raise

    def act(self, handle: duckdb.DuckDBPyConnection, action: Callable[[object], object]) -> object:
        handle.execute("BEGIN TRANSACTION")
        try:
            result = action(handle)
            handle.execute("COMMIT")
        except Exception:
            handle.execute("ROLLBACK")
            raise
        return result

    def refresh(self, handle: duckdb.DuckDBPyConnection) -> None:
        pairing.refresh(handle)
        stream_counts.refresh(handle)

    def retain(self, handle: duckdb.DuckDBPyConnection, now_ns: int, max_age_s: float, max_spans: int) -> dict:
        return retention.enforce(handle, now_ns, max_age_s, max_spans)

    def reader(self) -> duckdb.DuckDBPyConnection:
        return self._conn.cursor()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._conn.cursor()

    def close(self) -> None:
        self._conn.close()


class Store:
    """The store: its writer thread and group commit over an engine (DuckDB unless another is given), and readers."""

    MAX_JOBS_PER_COMMIT = 64  # batches sharing one commit at most
    GATHER_S = 0.002  # how long the writer waits for more batches before it commits
    # ... and how long at most while batches are announced as on their way (being decoded): a statement's
    # fixed cost is a few milliseconds, so four batches in one commit cost about half as much CPU per row as one;
    # four exports decoded one after the other (they share the interpreter) take longer than 20 ms on a busy machine
    GATHER_COMING_S = 0.05

    def __init__(
        self, path: str, queue_limit: int = 256, memory_limit: str | None = None, engine: Engine | None = None
    ):
        self._engine = engine if engine is not None else DuckDBEngine(path, memory_limit)
        # pyarrow imports pandas the first time it converts Python values (about 0.2-0.4 s of CPU): at opening,
        # not in the middle of the first export's commit
        pa.array([""], type=pa.string())
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=queue_limit)
        self._coming = 0  # batches announced by coming() and not submitted yet; guarded by the queue's mutex
        self._generation = 0  # commits that changed rows; written by the writer thread alone
        self._writer = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._writer.start()

    @property
    def engine(self) -> str:
        """Which engine holds the store (``duckdb``, ``chdb``, ``clickhouse``)."""
        return self._engine.name

    @property
    def read_mode(self) -> bool:
        """Whether the telemetry is read from another pipeline's tables, so OTLP sent here has nowhere to go."""
        return self._engine.read_mode

    def submit(self, table: str, rows: list[tuple]) -> Job:
        """Queue rows for the next group commit; raise StoreBusy when the queue is full.

        Span rows get their span_links rows from their Links column.
        """
        if table not in TABLE_COLUMNS:
            raise ValueError(f"unknown table {table!r}")
        tables = {table: rows}
        if table == "otel_traces":
            tables["span_links"] = link_rows(rows)
        return self._enqueue(Job(tables))

    def submit_tables(self, tables: dict[str, list[tuple]]) -> Job:
        """Queue rows for several tables, committed together (spans with the span_links rows of their links)."""
        unknown = set(tables) - set(_ARROW_SCHEMAS)
        if unknown:
            raise ValueError(f"unknown tables {sorted(unknown)}")
        return self._enqueue(Job(tables))

    def submit_action(self, action: Callable[[object], object]) -> Job:
        """Run ``action(handle)`` on the writer thread (on DuckDB: a cursor, in a transaction of its own)."""
        return self._enqueue(Job({}, action))

    def retain(self, now_ns: int, max_age_s: float, max_spans: int) -> Job:
        """Apply the retention limits once, on the writer thread; the job's result is rows deleted per table."""
        return self.submit_action(lambda handle: self._engine.retain(handle, now_ns, max_age_s, max_spans))

    @contextlib.contextmanager
    def coming(self):
        """Announce a batch that is being made and will be submitted within this block, or not at all.

        While batches are announced, the writer keeps its next group commit open for them (GATHER_COMING_S at
        most), so that exports decoded at the same time share one commit. Leave the block before waiting for the
        commit, or the writer waits for the block's own batch.
        """
        with self._queue.mutex:
            self._coming += 1
        try:
            yield
        finally:
            with self._queue.mutex:
                self._coming -= 1
                self._queue.not_empty.notify_all()  # a writer waiting for this batch must look again

    def _enqueue(self, job: Job) -> Job:
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
        """A cursor for one reader thread of a DuckDB store; close it when done."""
        return self._engine.cursor()

    def reader(self) -> Reader:
        """What the analyses read through (a ``Reader``, collectors/storage/reader.py); close it when done.

        The state the writer keeps is brought up to date with every commit before it (collectors/storage/pairing.py).
        """
        job = Job({}, self._engine.refresh, changes=False)  # kept state catches up with the rows: same answers
        self._queue.put(job, timeout=READ_WAIT_S)
        if not job.wait(READ_WAIT_S):
            raise TimeoutError("the store's state was not brought up to date in time")
        return self._engine.reader()

    @property
    def generation(self) -> int | None:
        """The number of the store's state: it grows with every commit that can change an answer, so that answers
        read in one state can be handed out again while it holds (collectors/storage/recall.py). None when this
        process is not the store's only writer (a ClickHouse server, read mode), so it cannot know the state."""
        return self._generation if self._engine.sole_writer else None

    def close(self) -> None:
        """Commit what is queued, stop the writer, close the store."""
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._engine.close()

    def _run(self) -> None:
        handle = self._engine.writer()
        while True:
            jobs = self._next_group()
            if not jobs:
                break
            if jobs[0].action is not None:
                self._run_action(handle, jobs[0])
            else:
                self._commit_group(handle, jobs)
        self._engine.release(handle)

    def _next_group(self) -> list[Job]:
        """The next action alone, or up to MAX_JOBS_PER_COMMIT row jobs; empty when closing.

        After the first row job the writer waits up to GATHER_S for more, or up to GATHER_COMING_S while
        batches are announced as on their way (``coming``), so that concurrent senders share a commit: one
        commit of many batches costs much less than many commits of one.
        """
        first = self._queue.get()
        if first is None:
            return []
        jobs = [first]
        started = time.monotonic()
        while first.action is None and len(jobs) < self.MAX_JOBS_PER_COMMIT:
            job = self._peek(started)
            if job is None or job.action is not None:
                break
            jobs.append(self._queue.get_nowait())
        return jobs

    def _peek(self, started: float) -> Job | None:
        """The job at the head of the queue without taking it, waiting for one until the gathering window that
        began at ``started`` closes; None if none came."""
        with self._queue.not_empty:
            while not self._queue._qsize():
                window = self.GATHER_COMING_S if self._coming else self.GATHER_S
                left = started + window - time.monotonic()
                if left <= 0:
                    return None
                self._queue.not_empty.wait(left)
            return self._queue.queue[0]

    def _run_action(self, handle, job: Job) -> None:
        try:
            job.result = self._engine.act(handle, job.action)
        except Exception as exc:
            log.exception("store action failed")
            job.finish(exc)
            return
        self._generation += job.changes
        job.finish(None)

    def _commit_group(self, cursor, jobs: list[Job]) -> None:
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
                    self._generation += 1
                    job.finish(None)
            return
        self._generation += 1
        for job in jobs:
            job.finish(None)

    def _commit(self, handle, jobs: list[Job]) -> None:
        self._engine.write(handle, group_batches(jobs))


def group_batches(jobs: list[Job]) -> dict[str, pa.Table]:
    """The rows of one group commit's jobs as one Arrow table per table, each keyed row once."""
    by_table: dict[str, list[tuple]] = {}
    for job in jobs:
        for table, rows in job.tables.items():
            by_table.setdefault(table, []).extend(rows)
    for table, key in _KEYED.items():
        if table in by_table:
            rows = by_table[table]
            by_table[table] = list(dict(zip(map(key, rows), rows)).values())
    return {table: _arrow_batch(table, rows) for table, rows in by_table.items() if rows}


def _write(cursor, batches: dict[str, pa.Table]) -> None:
    """Insert one group commit's batches within the open transaction (each table's identity rules applied)."""
    batches = dict(batches)
    spans, links = batches.pop("otel_traces", None), batches.pop("span_links", None)
    if spans is not None:
        _insert_new_spans(cursor, spans, links)
        pairing.after_spans(cursor, spans)
        stream_counts.after_spans(cursor, spans)
    elif links is not None:
        batches["span_links"] = links
    if "bus_messages" in batches:
        stream_counts.after_bus_messages(cursor, batches["bus_messages"])
    for table, batch in batches.items():
        if table in _INSERT_NEW:
            _insert_batch(cursor, _INSERT_NEW[table], batch, _time_range(table, batch))
        else:
            _insert_batch(cursor, _INSERTS[table], batch)
