"""The store's engine on ClickHouse: the same writer thread and group commit as DuckDB, inserts into ClickHouse.

``Store`` (collectors/storage/store.py) gathers submitted batches into one group commit and answers each
submitter only after ``write`` returns; here ``write`` makes one insert per table per group commit, and an
insert returns once ClickHouse has written its part, so the promise holds: 200 means stored.

Idempotence, with any number of collectors processes writing one ClickHouse: before inserting, each group
reads the identities already stored in the batch's own time range (spans by (TraceId, SpanId), within the
batch's trace ids, which the sorting key finds directly; log records and metric points by the same identity
as on DuckDB) and inserts only the rest. That is exact for one process (one writer thread) and for a retry
that reaches another process after the first answered or failed. What it cannot see is the same export
inserted by two processes at the same instant; ``otel_traces`` and ``span_links`` are ReplacingMergeTree on
their identity (collectors/storage/clickhouse/ddl.py), so such a pair collapses at the next merge and reads
with ``FINAL`` count it once. Insert deduplication tokens were not chosen: a group commit mixes batches from
different senders, so a retried export never arrives as the same block twice.

ClickHouse has no transaction over several tables: span links are inserted before their spans, so a group
that fails half-way leaves at most links whose spans the sender's retry then stores (their duplicates
collapse like the spans'), never spans without their links.

Where this process is the store's only writer (chdb in write mode), it keeps the pairing and the flows as tables
(collectors/storage/clickhouse/state.py): each group notes its new spans before inserting them, retention the traces
it deletes, and ``refresh`` (before every reader) recomputes what the notes can change. Elsewhere they are views.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from collectors.storage import pairing, retention
from collectors.storage.clickhouse import ddl, exporter, state
from collectors.storage.clickhouse.client import ClickHouseError, Client
from collectors.storage.clickhouse.reader import ClickHouseReader, materialized_ctes
from collectors.storage.spec import CHDB
from collectors.storage.store import IDENTITY

_KEY_SEPARATOR = "\x00"  # never inside an identity column's text
DELETE_CHUNK = 10_000  # trace ids per DELETE statement
LOOKUP_CHUNK = 2_000  # trace ids per identity lookup (about 70 KB of parameters)


def plain_batch(batch: pa.Table) -> pa.Table:
    """``batch`` with its JSON-typed columns as plain strings (what a ClickHouse String column takes)."""
    fields = [pa.field(f.name, pa.string()) if isinstance(f.type, pa.JsonType) else f for f in batch.schema]
    return batch.cast(pa.schema(fields)) if fields != list(batch.schema) else batch


def _keys(table: pa.Table, columns: tuple[str, ...]) -> pa.Array:
    texts = [pc.cast(table[column], pa.string()) for column in columns]
    return pc.binary_join_element_wise(*texts, _KEY_SEPARATOR)


def _identity_query(table: str) -> str:
    time, columns = IDENTITY[table]
    select = ", ".join(f"`{column}`" for column in columns)
    query = f"SELECT {select} FROM {table} WHERE `{time}` BETWEEN {{lo:Int64}} AND {{hi:Int64}}"
    if table == "otel_traces":
        query += " AND TraceId IN {traces:Array(String)}"
    return query


_IDENTITY_QUERIES = {table: _identity_query(table) for table in IDENTITY}


class ClickHouseEngine:
    """The store on ClickHouse; ``name`` says which (``chdb`` in this process, ``clickhouse`` a server)."""

    def __init__(self, client: Client, name: str, reader_client: Callable[[], Client], read_mode: bool = False):
        self.name = name
        self._client = client
        self._reader_client = reader_client
        self.read_mode = read_mode
        self.sole_writer = name == CHDB and not read_mode  # one process holds a chdb directory; a server has many
        if not read_mode:  # in read mode exporter.create made the views and the tables only eventscope writes
            for statement in (*ddl.STATEMENTS, *ddl.MIGRATIONS):
                client.command(statement)
        # kept tables where this process alone writes; elsewhere views, exact whatever wrote the spans (state.py)
        self._state = state.KeptState(client) if self.sole_writer else None
        if self._state is None:
            state.create_paired_deliveries(client)
        self._materialized = materialized_ctes(client)

    def writer(self) -> Client:
        return self._client

    def release(self, handle: Client) -> None:
        """The writer's client is the engine's own; ``close`` closes it."""

    def write(self, handle: Client, batches: dict[str, pa.Table]) -> None:
        if self.read_mode and not batches.keys().isdisjoint(exporter.DERIVED):
            raise ClickHouseError(
                "this store reads an OpenTelemetry Collector's tables (?tables=exporter): "
                "send telemetry to that Collector, not to eventscope"
            )
        batches = {table: plain_batch(batch) for table, batch in batches.items()}
        spans, links = batches.pop("otel_traces", None), batches.pop("span_links", None)
        if spans is not None:
            self._write_spans(handle, spans, links)
        elif links is not None:
            handle.insert_arrow("span_links", links)
        for table, batch in batches.items():
            if table in IDENTITY:
                batch = new_rows(handle, table, batch)
            if batch.num_rows:
                handle.insert_arrow(table, batch)

    def _write_spans(self, handle: Client, spans: pa.Table, links: pa.Table | None) -> None:
        new = new_rows(handle, "otel_traces", spans)
        if not new.num_rows:
            return
        if links is not None and new.num_rows < spans.num_rows:
            keys = _keys(new, ("TraceId", "SpanId"))
            links = links.filter(pc.is_in(_keys(links, ("TraceId", "SpanId")), value_set=keys))
        if self._state is not None:
            self._state.note_spans(new)  # before the spans: a crash in between leaves a note too many, not too few
        if links is not None and links.num_rows:
            handle.insert_arrow("span_links", links)
        handle.insert_arrow("otel_traces", new)
        if self._state is not None and self._state.noted() >= pairing.MAX_PENDING:
            self._state.refresh()  # the work a read waits for stays small

    def act(self, handle: Client, action: Callable[[object], object]) -> object:
        return action(handle)

    def refresh(self, handle: Client) -> None:
        """Recompute the kept rows that the spans stored or deleted since can change (views need nothing)."""
        if self._state is not None:
            self._state.refresh()

    def retain(self, handle: Client, now_ns: int, max_age_s: float, max_spans: int) -> dict[str, int]:
        if self.read_mode:  # the exporter's tables keep their own TTL; eventscope deletes none of the pipeline's rows
            return {}
        if self._state is None:
            return enforce_retention(handle, now_ns, max_age_s, max_spans)
        deleted = enforce_retention(handle, now_ns, max_age_s, max_spans, self._state.note_traces)
        self._state.refresh()
        if deleted.get("otel_traces"):
            self._state.tidy()
        return deleted

    def reader(self) -> ClickHouseReader:
        """A reader on a client of its own, so that reads run beside the writer's inserts."""
        return ClickHouseReader(self._reader_client(), self._materialized)

    def cursor(self):
        raise TypeError(f"a {self.name} store has no DuckDB cursor; use reader()")

    def close(self) -> None:
        self._client.close()


def new_rows(client: Client, table: str, batch: pa.Table) -> pa.Table:
    """The rows of ``batch`` whose identity is not stored yet (looked up in the batch's own time range)."""
    time, columns = IDENTITY[table]
    bounds = pc.min_max(batch[time])
    parameters: dict[str, object] = {"lo": bounds["min"].as_py(), "hi": bounds["max"].as_py()}
    if table == "otel_traces":  # by trace too, in chunks that keep each query's parameters small
        traces = pc.unique(batch["TraceId"]).to_pylist()
        chunks = [{**parameters, "traces": traces[i : i + LOOKUP_CHUNK]} for i in range(0, len(traces), LOOKUP_CHUNK)]
    else:
        chunks = [parameters]
    stored = [client.query_arrow(_IDENTITY_QUERIES[table], chunk) for chunk in chunks]
    stored = [part for part in stored if part.num_rows]
    if not stored:
        return batch
    schema = batch.select(list(columns)).schema
    known = pa.concat_tables([part.cast(schema) for part in stored])
    return batch.filter(pc.invert(pc.is_in(_keys(batch, columns), value_set=_keys(known, columns))))


# Retention, by the rule of collectors/storage/retention.py: whole traces by age of their latest span end and
# by span count, newest first, never the newest trace; other tables by age, never their newest row.
_TRACE_AGES = """
SELECT TraceId, max(Timestamp + Duration) AS EndNs, count() AS Spans FROM otel_traces FINAL
GROUP BY TraceId ORDER BY EndNs DESC, TraceId DESC
"""
_OLD = {
    table: f"{column} < least({{cutoff:Int64}}, (SELECT max({column}) FROM {table}))"
    for table, column in retention.TIMED_TABLES
}
_COUNT_OLD = {table: f"SELECT count() AS n FROM {table} WHERE {old}" for table, old in _OLD.items()}
_DELETE_OLD = {table: f"DELETE FROM {table} WHERE {old}" for table, old in _OLD.items()}
_DELETE_TRACES = tuple(
    f"DELETE FROM {table} WHERE TraceId IN {{traces:Array(String)}}" for table in ("span_links", "otel_traces")
)


def expired_traces(ages: pa.Table, cutoff_ns: int | None, max_spans: int) -> list[str]:
    """The trace ids that must go, from (TraceId, EndNs, Spans) newest first; never the newest trace."""
    ids, ends, spans = (ages[name].to_pylist() for name in ("TraceId", "EndNs", "Spans"))
    expired = set()
    if cutoff_ns is not None:
        expired.update(ids[i] for i in range(1, len(ids)) if ends[i] < cutoff_ns)
    if max_spans:
        kept_through = 0
        for i, trace_id in enumerate(ids):
            if trace_id in expired:
                continue
            kept_through += spans[i]
            if i > 0 and kept_through > max_spans:
                expired.add(trace_id)
    return sorted(expired)


def enforce_retention(
    client: Client, now_ns: int, max_age_s: float, max_spans: int, before: Callable[[list[str]], None] | None = None
) -> dict[str, int]:
    """Delete what the limits say must go (0 = no limit); rows deleted per table. ``before`` is told each chunk of
    trace ids before they are deleted."""
    deleted: dict[str, int] = {}
    if not max_age_s and not max_spans:
        return deleted
    cutoff = now_ns - int(max_age_s * retention.NS_PER_S) if max_age_s else None
    ages = client.query_arrow(_TRACE_AGES, {})
    expired = expired_traces(ages, cutoff, max_spans)
    by_trace = dict(zip(ages["TraceId"].to_pylist(), ages["Spans"].to_pylist(), strict=True))
    for start in range(0, len(expired), DELETE_CHUNK):
        chunk = expired[start : start + DELETE_CHUNK]
        if before is not None:
            before(chunk)
        for statement in _DELETE_TRACES:
            client.command(statement, {"traces": chunk})
    if cutoff is not None:
        for table in _DELETE_OLD:
            deleted[table] = client.query_arrow(_COUNT_OLD[table], {"cutoff": cutoff})["n"][0].as_py()
            if deleted[table]:
                client.command(_DELETE_OLD[table], {"cutoff": cutoff})
    deleted["otel_traces"] = sum(by_trace[trace_id] for trace_id in expired)
    return deleted
