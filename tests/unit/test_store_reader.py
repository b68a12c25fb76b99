"""Every analysis reads the store only through the Reader interface (collectors/storage/reader.py).

Each API answer is computed twice over the same small store: once on a DuckDB cursor, once on a reader
that offers nothing but the interface (execute, then description/fetchall/fetchone, and close). The
answers must be equal, so an analysis that reached past the interface (another cursor method, a second
connection) fails here; and no analysis module imports duckdb.
"""

from __future__ import annotations

import ast
import inspect

import duckdb
import pytest

from collectors.analyses import (
    duplicates,
    event_life,
    flow,
    instrumentation,
    latency,
    loss,
    overview,
    report,
    sequences,
    slow_consumers,
    traces,
)
from collectors.bus import broker_stats
from collectors.serving import api, openapi
from collectors.storage import pairing, queries
from collectors.storage.reader import Reader, Result
from collectors.storage.schema import BUS_COLUMNS, SCHEMA, SPAN_COLUMNS

ANALYSES = (
    broker_stats, duplicates, event_life, flow, instrumentation, latency, loss, overview, queries, report, sequences,
    slow_consumers, traces,
)  # fmt: skip
MS = 1_000_000
TRACE = {n: f"{n:032x}" for n in (1, 2, 3)}


class _OnlyResult:
    def __init__(self, result):
        self._result = result

    @property
    def description(self):
        return self._result.description

    def fetchall(self) -> list[tuple]:
        return self._result.fetchall()

    def fetchone(self) -> tuple | None:
        return self._result.fetchone()


class _OnlyReader:
    """The Reader interface and nothing else, over a DuckDB cursor."""

    def __init__(self, cursor):
        self._cursor = cursor

    def execute(self, query: str, parameters=()) -> _OnlyResult:
        return _OnlyResult(self._cursor.execute(query, parameters))

    def close(self) -> None:
        self._cursor.close()


def _span(trace: str, span: str, kind: str, t: int, **fields) -> tuple:
    row = {"Timestamp": t, "TraceId": trace, "SpanId": span, "ParentSpanId": "", "TraceState": "",
           "SpanName": f"{kind} shop.orders", "SpanKind": kind, "ServiceName": "orders", "ResourceAttributes": "{}",
           "ScopeName": "t", "ScopeVersion": "", "SpanAttributes": "{}", "Duration": 2 * MS, "StatusCode": "Unset",
           "StatusMessage": "", "Events": "[]", "Links": "[]", "MsgDestination": "shop.orders",
           "CeType": "shop.order.placed", "CeSource": "/orders/1", "PartitionKey": "p0", **fields}  # fmt: skip
    return tuple(row.get(column) for column in SPAN_COLUMNS)


def _bus(seq: int, event_id: str, sequence: int | None) -> tuple:
    row = {"ArrivalNs": 100 * MS + seq, "ArrivalSeq": seq, "Channel": "shop.orders", "Pattern": "*", "Size": 10,
           "Valid": True, "EventId": event_id, "Source": "/orders/1", "Type": "shop.order.placed",
           "Sequence": sequence, "PartitionKey": "p0", "Payload": "{}", "Kind": "event"}  # fmt: skip
    return tuple(row.get(column) for column in BUS_COLUMNS)


@pytest.fixture(scope="module")
def conn():
    conn = duckdb.connect()
    conn.execute(SCHEMA)
    p, c = "Producer", "Consumer"
    spans = [
        _span(TRACE[1], "p1", p, 100 * MS, MsgMessageId="e1", Sequence=1),
        _span(TRACE[1], "c1", c, 105 * MS, ParentSpanId="p1", MsgMessageId="e1", MsgConsumerGroup="stock",
              ServiceName="stock", Outcome="processed", Sequence=1),
        _span(TRACE[2], "p2", p, 110 * MS, MsgMessageId="e3", Sequence=3),
        _span(TRACE[2], "c2", c, 120 * MS, ParentSpanId="p2", MsgMessageId="e3", MsgConsumerGroup="stock",
              ServiceName="stock", Outcome="dead_lettered", StatusCode="Error", Attempts=3, Sequence=3),
        _span(TRACE[3], "c3", c, 130 * MS, MsgMessageId="e3", MsgConsumerGroup="stock", ServiceName="stock",
              Outcome="duplicate_skipped", Sequence=3),
    ]  # fmt: skip
    conn.executemany(f"INSERT INTO otel_traces VALUES ({', '.join('?' * len(SPAN_COLUMNS))})", spans)
    bus = [_bus(1, "e1", 1), _bus(2, "e3", 3), _bus(3, "e3", 3)]
    conn.executemany(f"INSERT INTO bus_messages VALUES ({', '.join('?' * len(BUS_COLUMNS))})", bus)
    pairing.rebuild(conn)
    yield conn
    conn.close()


CONCRETE = {
    "/api/v1/traces/{trace_id}": "/api/v1/traces/" + TRACE[1],
    "/api/v1/events/{event_id}": "/api/v1/events/e3",
    "/api/v1/sequences": "/api/v1/sequences",
}
QUERY = {"/api/v1/sequences": {"channel": ["shop.orders"], "source": ["/orders/1"], "partitionkey": ["p0"]}}


def _answer(reader, path: str) -> tuple[int, dict]:
    params = {"grace_s": ["0"], **QUERY.get(path, {})}
    status, answer = api.handle(reader, CONCRETE.get(path, path), params)
    answer.pop("generated_at_ns", None)  # the one figure that is the clock's, not the store's
    return status, answer


@pytest.mark.parametrize("path", sorted(set(openapi.PATHS) - {"/api/v1/health"}))  # health: the collectors' own
def test_every_answer_is_the_same_through_the_bare_interface(conn, path):
    direct = _answer(conn.cursor(), path)
    assert _answer(_OnlyReader(conn.cursor()), path) == direct
    assert direct[0] == 200, direct


def test_a_duckdb_cursor_is_a_reader_and_its_result_a_result(conn):
    cursor = conn.cursor()
    assert isinstance(cursor, Reader)
    assert isinstance(cursor.execute("SELECT 1"), Result)
    assert isinstance(_OnlyReader(cursor), Reader)


@pytest.mark.parametrize("module", ANALYSES, ids=lambda m: m.__name__)
def test_no_analysis_imports_duckdb(module):
    tree = ast.parse(inspect.getsource(module))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "duckdb" not in imported
