"""The store: one embedded DuckDB file, written only by the collectors process.

One schema string and a column tuple per table are the row contract. A single writer thread owns
the write path and commits many submitted batches in one transaction (group commit); a submitter
learns that its rows are durable only after that commit, which is what lets the OTLP receiver
answer 200 safely. Span writes are idempotent on (TraceId, SpanId), so a retried export never
counts twice. The store never traces its own writes.
"""

from __future__ import annotations

import logging
import os
import queue
import threading

import duckdb
import pyarrow as pa

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
    PRIMARY KEY (TraceId, SpanId)
);
-- One row per span link, so links can be followed in both directions without parsing JSON.
CREATE TABLE IF NOT EXISTS span_links (
    TraceId VARCHAR NOT NULL,
    SpanId VARCHAR NOT NULL,
    LinkedTraceId VARCHAR NOT NULL,
    LinkedSpanId VARCHAR NOT NULL,
    PRIMARY KEY (TraceId, SpanId, LinkedTraceId, LinkedSpanId)
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
    Payload VARCHAR NOT NULL
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
)

_ARROW_TYPES = {
    "otel_traces": pa.schema(
        [(name, pa.int64() if name in ("Timestamp", "Duration", "Sequence") else pa.string()) for name in SPAN_COLUMNS]
    ),
    "bus_messages": pa.schema(
        [
            (
                name,
                pa.int64()
                if name in ("ArrivalNs", "ArrivalSeq", "Sequence")
                else pa.int32()
                if name == "Size"
                else pa.bool_()
                if name == "Valid"
                else pa.string(),
            )
            for name in BUS_COLUMNS
        ]
    ),
}
_INSERT_LINKS = """
INSERT OR IGNORE INTO span_links
SELECT DISTINCT TraceId, SpanId, link->>'TraceId', link->>'SpanId'
FROM (SELECT TraceId, SpanId, unnest(CAST(Links AS JSON[])) AS link FROM _batch WHERE Links <> '[]')
"""
_INSERTS = {
    "otel_traces": "INSERT OR IGNORE INTO otel_traces SELECT * FROM _batch",
    "bus_messages": "INSERT INTO bus_messages SELECT * FROM _batch",
}


class StoreBusy(RuntimeError):
    """The write queue is full: the caller should ask its sender to retry later."""


class _Job:
    def __init__(self, table: str, rows: list[tuple]):
        self.table = table
        self.rows = rows
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
    schema = _ARROW_TYPES[table]
    columns = list(zip(*rows, strict=False)) if rows else [()] * len(schema)
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=False)], schema=schema
    )


class Store:
    """The DuckDB file, its writer thread, and read cursors for queries."""

    MAX_JOBS_PER_COMMIT = 64

    def __init__(self, path: str, queue_limit: int = 256):
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._conn = duckdb.connect(path)
        self._conn.execute(SCHEMA)
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_limit)
        self._writer = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._writer.start()

    def submit(self, table: str, rows: list[tuple]) -> _Job:
        """Queue rows for the next group commit; raise StoreBusy when the queue is full."""
        job = _Job(table, rows)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise StoreBusy("store write queue is full") from None
        return job

    def write(self, table: str, rows: list[tuple], timeout: float = 30.0) -> None:
        """Submit and wait for the commit (used by tests and tools)."""
        if not self.submit(table, rows).wait(timeout):
            raise TimeoutError("store commit did not finish in time")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for one reader thread; close it when done."""
        return self._conn.cursor()

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._conn.close()

    def _run(self) -> None:
        cursor = self._conn.cursor()
        while True:
            first = self._queue.get()
            if first is None:
                break
            jobs = [first]
            while len(jobs) < self.MAX_JOBS_PER_COMMIT:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)
                    break
                jobs.append(job)
            self._commit_group(cursor, jobs)
        cursor.close()

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
            by_table.setdefault(job.table, []).extend(job.rows)
        cursor.execute("BEGIN TRANSACTION")
        try:
            for table, rows in by_table.items():
                if table == "otel_traces":
                    rows = list({(r[1], r[2]): r for r in rows}.values())
                cursor.register("_batch", _arrow_batch(table, rows))
                try:
                    cursor.execute(_INSERTS[table])
                    if table == "otel_traces":
                        cursor.execute(_INSERT_LINKS)
                finally:
                    cursor.unregister("_batch")
            cursor.execute("COMMIT")
        except Exception:
            cursor.execute("ROLLBACK")
            raise
