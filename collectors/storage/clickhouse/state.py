"""The state the writer keeps, on ClickHouse: the pairing of every delivery and the causal flows.

On DuckDB the writer keeps the pairing and the flows as tables and recomputes just the rows that new or deleted spans
can change (collectors/storage/pairing.py, flows.py). On ClickHouse the same definitions (collectors/analyses/
deliveries.py ``PAIRING``, latency.py ``FLOWS`` and ``END_TO_END``, translated by collectors/storage/clickhouse/
dialect.py) are kept in one of two ways, by who writes the spans:

- Where this process is the store's only writer (a chdb store in write mode: ``KeptState``), it keeps them as
  tables the way DuckDB does. Each commit notes the (TraceId, MsgMessageId) of the spans it stores, and retention
  those of the traces it deletes (``pairing_pending``, written before the spans, so a crash in between leaves a
  note too many, never one too few); before a reader is handed out the writer recomputes the rows those notes can
  change, by the same scoping rules as pairing.py and flows.py, with the translated definitions run over just the
  scoped spans and links. A kept table is a ``ReplacingMergeTree(_version, _deleted)`` ordered by the row's
  identity: replacing rows is two inserts (a deletion mark for every stale row, then the recomputed rows, each
  with a higher version), and the name the analyses read is a view of it ``FINAL``. ClickHouse's lightweight
  DELETE was measured against that: each is a mutation, and a few of them in a row grew to 0.6 s per commit on a
  million rows, where the marks took 0.02-0.1 s and ``FINAL`` added next to nothing to a read. Merges keep the
  mark of every deleted row, so after retention a table whose marks and replaced rows outnumber its live rows is
  rewritten without them (``OPTIMIZE ... FINAL CLEANUP``, ``KeptState.tidy``). A store whose kept
  tables were built by other definitions (``state_versions``) gets them rebuilt from scratch when opened.
- Where others write too (a ClickHouse server, which any number of collectors processes write) or an OpenTelemetry
  Collector writes the spans (read mode), each is a view of its definition: exact whatever wrote the spans, with
  nothing to keep up to date, its cost paid per answer. Kept tables there would need every writer to note its
  changes and one of them to apply everyone's in order, and nothing notes what the Collector inserts; a
  materialised view is not exact either, as it sees one inserted block at a time while a delivery's pairing
  depends on spans of other blocks (a producer that arrives after its consumer).

One more kept table is one more ``Kept`` entry in ``KEPT`` (and, if its scope is a new one, its steps in ``SCOPE``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

import pyarrow as pa

from collectors.analyses import roles
from collectors.analyses.deliveries import PAIRING
from collectors.analyses.latency import END_TO_END, FLOW_ENDS, FLOWS, TRACE_FLOWS
from collectors.analyses.observations import PAIRED
from collectors.storage import pairing
from collectors.storage.clickhouse.client import Client
from collectors.storage.clickhouse.dialect import translate
from collectors.storage.clickhouse.reader import SETTINGS, ArrowClient

_QUERY_SETTINGS = ", ".join(f"{name} = {value}" for name, value in SETTINGS.items() if not name.startswith("output_"))
VIEWS = {PAIRED: PAIRING, TRACE_FLOWS: FLOWS, FLOW_ENDS: END_TO_END}
"""Every table the writer keeps on DuckDB (collectors/storage/pairing.py, flows.py), by its definition."""

VERSIONS = pairing.VERSIONS
PENDING = pairing.PENDING
VERSION = "_version"
DELETED = "_deleted"
TIDY_SLACK = 10_000
"""Rows past twice the live ones a kept table may hold before ``KeptState.tidy`` rewrites it."""
_SIGNATURE = "clickhouse"  # the row of VERSIONS that holds the kept tables' digest


def definition(name: str = PAIRED) -> str:
    """The ClickHouse statement that creates (or replaces) one view of its definition (stores others write)."""
    select, _ = translate(VIEWS[name])
    return f"CREATE OR REPLACE VIEW {name} AS {select} SETTINGS {_QUERY_SETTINGS}"


def create_paired_deliveries(client: ArrowClient) -> None:
    """Create the views of kept state (``paired_deliveries``, the flows) over ``otel_traces`` and ``span_links``
    (the tables must exist)."""
    for name in VIEWS:
        client.query_arrow(definition(name), {})


# --- kept tables (the store's only writer) ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Kept:
    """One kept table: its definition (DuckDB SQL), the columns that identify a row, which of its rows a refresh
    marks stale (``stale``, a condition on the table's columns over the scope tables) and which rows of the
    definition run over the scope replace them (``fresh``, a condition on the definition's columns, or None for
    all), and which stored tables the definition reads in the scope instead (``scoped``: table -> scope table)."""

    name: str
    definition: str
    key: str
    stale: str
    fresh: str | None
    scoped: dict[str, str]

    @property
    def rows(self) -> str:
        """The table that holds the versioned rows; the analyses read ``name``, a view of it."""
        return f"{self.name}_kept"

    def select(self) -> str:
        """The definition in ClickHouse SQL, over every stored span."""
        return translate(self.definition)[0]

    def scoped_select(self) -> str:
        """The definition in ClickHouse SQL, over the scope tables."""
        text = self.select()
        for table, scope in self.scoped.items():
            text = re.sub(rf"\b{table}\b", scope, text)
        return text


def _scope_step(name: str, duckdb_select: str) -> tuple[str, str]:
    return name, translate(duckdb_select)[0]


# The scope of one refresh, computed once, in order, from the noted spans (``_touched``): the pairing's as in
# collectors/storage/pairing.py, the flows' as in collectors/storage/flows.py (written here with IN over tuples,
# which ClickHouse runs as one hash lookup, where DuckDB's text has correlated EXISTS and SEMI JOIN).
SCOPE = (
    ("_touched", f"SELECT DISTINCT TraceId, MsgMessageId FROM {PENDING}"),
    _scope_step(
        "_affected",
        f"""SELECT s.TraceId, s.SpanId, s.MsgMessageId FROM otel_traces s
        WHERE {roles.delivery("s")} AND (
            s.TraceId IN (SELECT TraceId FROM _touched)
            OR s.MsgMessageId IN (SELECT MsgMessageId FROM _touched)
            OR (s.TraceId, s.SpanId) IN (
                SELECT TraceId, SpanId FROM span_links WHERE LinkedTraceId IN (SELECT TraceId FROM _touched)))""",
    ),
    (
        "_scope_traces",
        """SELECT TraceId FROM _affected
        UNION DISTINCT SELECT LinkedTraceId FROM span_links
        WHERE (TraceId, SpanId) IN (SELECT TraceId, SpanId FROM _affected)""",
    ),
    (
        "_scope_spans",
        """SELECT * FROM otel_traces
        WHERE TraceId IN (SELECT TraceId FROM _scope_traces) OR MsgMessageId IN (SELECT MsgMessageId FROM _affected)""",
    ),
    ("_scope_links", "SELECT * FROM span_links WHERE (TraceId, SpanId) IN (SELECT TraceId, SpanId FROM _affected)"),
    (
        "_flow_near",
        """SELECT TraceId FROM _touched
        UNION DISTINCT SELECT LinkedTraceId FROM span_links WHERE TraceId IN (SELECT TraceId FROM _touched)
        UNION DISTINCT SELECT TraceId FROM span_links WHERE LinkedTraceId IN (SELECT TraceId FROM _touched)""",
    ),
    (
        "_flow_scope",
        f"""SELECT TraceId FROM _flow_near
        UNION DISTINCT SELECT trace_id FROM {TRACE_FLOWS}
        WHERE flow IN (SELECT flow FROM {TRACE_FLOWS} WHERE trace_id IN (SELECT TraceId FROM _flow_near))""",
    ),
    ("_flow_links", "SELECT * FROM span_links WHERE TraceId IN (SELECT TraceId FROM _flow_scope)"),
    ("_flow_spans", "SELECT * FROM otel_traces WHERE TraceId IN (SELECT TraceId FROM _flow_scope)"),
)
"""(scope table, ClickHouse SELECT) of every scope table a refresh makes, in the order they are made."""

KEPT = (
    Kept(
        PAIRED,
        PAIRING,
        "TraceId, SpanId",
        "TraceId IN (SELECT TraceId FROM _touched) OR (TraceId, SpanId) IN (SELECT TraceId, SpanId FROM _affected)",
        "(TraceId, SpanId) IN (SELECT TraceId, SpanId FROM _affected)",
        {"otel_traces": "_scope_spans", "span_links": "_scope_links"},
    ),
    Kept(
        TRACE_FLOWS,
        FLOWS,
        "trace_id",
        "trace_id IN (SELECT TraceId FROM _flow_scope)",
        None,
        {"span_links": "_flow_links"},
    ),
    Kept(
        FLOW_ENDS,
        END_TO_END,
        "flow",
        "flow IN (SELECT TraceId FROM _flow_scope)",
        None,
        {"otel_traces": "_flow_spans", "span_links": "_flow_links"},
    ),
)
"""Every table the store's only writer keeps on ClickHouse; the scope tables are made before any is replaced, so
each scope reads the kept tables as they were (the flows' scope reads the flows before their update)."""

_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {VERSIONS} (Name String, Digest String, At UInt64) "
    "ENGINE = ReplacingMergeTree(At) ORDER BY Name",
    f"CREATE TABLE IF NOT EXISTS {PENDING} (TraceId String, MsgMessageId Nullable(String)) "
    "ENGINE = MergeTree ORDER BY tuple()",
)
_BUILT = f"SELECT Digest FROM {VERSIONS} FINAL WHERE Name = {{name:String}}"
_NOTED = f"SELECT count() AS n FROM {PENDING}"
_NOTE_TRACES = f"""
INSERT INTO {PENDING} SELECT DISTINCT TraceId, MsgMessageId FROM otel_traces WHERE TraceId IN {{traces:Array(String)}}
"""
_EXISTS = "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = {name:String}"


_DROP_SCOPE = f"DROP TABLE IF EXISTS {', '.join(name for name, _ in SCOPE)}"


def _scope_table(name: str, select: str) -> str:
    return f"CREATE OR REPLACE TABLE {name} ENGINE = Memory AS {select} SETTINGS {_QUERY_SETTINGS}"


_ROWS_SETTINGS = "allow_nullable_key = 1, allow_experimental_replacing_merge_with_cleanup = 1"


def _create_rows(kept: Kept, version: int) -> str:
    return (
        f"CREATE TABLE {kept.rows} ENGINE = ReplacingMergeTree({VERSION}, {DELETED}) ORDER BY ({kept.key}) "
        f"SETTINGS {_ROWS_SETTINGS} AS SELECT *, toUInt64({version}) AS {VERSION}, toUInt8(0) AS {DELETED} "
        f"FROM ({kept.select()}) SETTINGS {_QUERY_SETTINGS}"
    )


def _view(kept: Kept) -> str:
    return f"CREATE OR REPLACE VIEW {kept.name} AS SELECT * EXCEPT ({VERSION}, {DELETED}) FROM {kept.rows} FINAL"


def _mark_stale(kept: Kept, version: int) -> str:
    return (
        f"INSERT INTO {kept.rows} SELECT * EXCEPT ({VERSION}, {DELETED}), toUInt64({version}), toUInt8(1) "
        f"FROM {kept.rows} FINAL WHERE {kept.stale}"
    )


def _insert_fresh(kept: Kept, version: int) -> str:
    where = f" WHERE {kept.fresh}" if kept.fresh else ""
    return (
        f"INSERT INTO {kept.rows} SELECT *, toUInt64({version}), toUInt8(0) FROM ({kept.scoped_select()}){where} "
        f"SETTINGS {_QUERY_SETTINGS}"
    )


def digest() -> str:
    """What the kept tables were built by: every statement that builds or updates them."""
    texts = [_create_rows(kept, 0) + _insert_fresh(kept, 0) + kept.stale for kept in KEPT]
    texts += [select for _, select in SCOPE]
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]


class KeptState:
    """The kept tables of a store this process alone writes, on the writer's client (its thread only)."""

    def __init__(self, client: Client):
        self._client = client
        self._digest = digest()
        for statement in _CREATE:
            client.command(statement)
        self._version = self._latest_version() + 1
        self._noted = client.query_arrow(_NOTED, {})["n"][0].as_py()  # notes left by a process that stopped
        built = client.query_arrow(_BUILT, {"name": _SIGNATURE})
        if not built.num_rows or built["Digest"][0].as_py() != self._digest:
            self.rebuild()

    def _latest_version(self) -> int:
        latest = 0
        for kept in KEPT:
            if self._client.query_arrow(_EXISTS, {"name": kept.rows})["n"][0].as_py():
                found = self._client.query_arrow(f"SELECT max({VERSION}) AS v FROM {kept.rows}", {})["v"][0].as_py()
                latest = max(latest, found or 0)
        return latest

    def _next_version(self) -> int:
        self._version += 1
        return self._version

    def rebuild(self) -> None:
        """Compute every kept table from scratch (a store written before them, or by other definitions)."""
        version = self._next_version()
        for kept in KEPT:
            self._client.command(f"DROP TABLE IF EXISTS {kept.rows} SYNC")
            self._client.command(_create_rows(kept, version))
            self._client.command(_view(kept))
        self._client.command(f"TRUNCATE TABLE {PENDING}")
        self._noted = 0
        self._client.command(
            f"INSERT INTO {VERSIONS} VALUES ({{name:String}}, {{digest:String}}, {{at:UInt64}})",
            {"name": _SIGNATURE, "digest": self._digest, "at": version},
        )

    def note_spans(self, spans: pa.Table) -> None:
        """Note the spans about to be stored (before they are: a crash in between leaves one note too many)."""
        noted = spans.select(["TraceId", "MsgMessageId"]).group_by(["TraceId", "MsgMessageId"]).aggregate([])
        self._noted += noted.num_rows  # first: a failed insert may have stored some, and a note too many is harmless
        self._client.insert_arrow(PENDING, noted)

    def note_traces(self, traces: list[str]) -> None:
        """Note the spans of ``traces``, about to be deleted."""
        self._client.command(_NOTE_TRACES, {"traces": traces})
        self._noted = self._client.query_arrow(_NOTED, {})["n"][0].as_py()

    def noted(self) -> int:
        """How many notes wait for the next refresh (counted here: the writer's thread alone adds or clears them)."""
        return self._noted

    def tidy(self) -> None:
        """Drop the deletion marks and replaced rows of a kept table once they outnumber its rows (after retention:
        ``FINAL`` hides them, but a merge keeps a mark of every row ever deleted unless told to clean up)."""
        for kept in KEPT:
            stored = self._client.query_arrow(f"SELECT count() AS n FROM {kept.rows}", {})["n"][0].as_py()
            live = self._client.query_arrow(f"SELECT count() AS n FROM {kept.rows} FINAL", {})["n"][0].as_py()
            if stored > 2 * live + TIDY_SLACK:
                self._client.command(f"OPTIMIZE TABLE {kept.rows} FINAL CLEANUP")

    def refresh(self) -> None:
        """Recompute the rows of every kept table that the noted spans can change."""
        if not self.noted():
            return
        for name, select in SCOPE:
            self._client.command(_scope_table(name, select))
        stale, fresh = self._next_version(), self._next_version()
        for kept in KEPT:
            self._client.command(_mark_stale(kept, stale))
            self._client.command(_insert_fresh(kept, fresh))
        self._client.command(f"TRUNCATE TABLE {PENDING}")
        self._noted = 0
        self._client.command(_DROP_SCOPE)
