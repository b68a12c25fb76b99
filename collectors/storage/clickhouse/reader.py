"""The Reader protocol on ClickHouse: the analyses' DuckDB SQL answered by ClickHouse, rows as DuckDB gives them.

A ``ClickHouseReader`` translates each query (collectors/storage/clickhouse/dialect.py), runs it through a client
that has one method, ``query_arrow(sql, parameters) -> pyarrow.Table`` (a server through clickhouse-connect, or
chdb in-process: collectors/storage/clickhouse/client.py), and hands the rows back as the Python values a DuckDB
cursor gives: int, float, str, None, bool, lists, and dicts for structs.

The session settings that give DuckDB's semantics go with every query (a ``SETTINGS`` clause), so any client
answers alike: an outer join's missing side is NULL (``join_use_nulls``), an aggregate over no rows is NULL
(``aggregate_functions_null_for_empty``), a column's own name wins over a select alias of the same name inside
expressions (``prefer_column_name_to_alias``), text comes back as text.

A CTE the analyses mark ``AS MATERIALIZED`` (one read several times, e.g. every observation of every stream) is
computed once where the engine can (``enable_materialized_cte``, ClickHouse 25.x and later, chdb included); without
it ClickHouse inlines the CTE at each reference, plans and computes it again each time: on ten spans in read mode
a stream count took 5.3 s that way and 0.4 s materialised. An older server gets plain CTEs (the same rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pyarrow as pa

from collectors.storage.clickhouse.dialect import translate
from collectors.storage.reader import Parameters

SETTINGS = {
    "join_use_nulls": 1,
    "aggregate_functions_null_for_empty": 1,
    "prefer_column_name_to_alias": 1,
    "output_format_arrow_string_as_string": 1,
    "output_format_arrow_low_cardinality_as_dictionary": 0,
    "allow_experimental_correlated_subqueries": 1,
    "enable_analyzer": 1,
}
"""Settings every query runs with (see the module docstring)."""
_SETTINGS_CLAUSE = " SETTINGS " + ", ".join(f"{name} = {value}" for name, value in SETTINGS.items())
MATERIALIZED_CTE = "enable_materialized_cte"
_MATERIALIZED_CLAUSE = f", {MATERIALIZED_CTE} = 1"
_PROBE = "SELECT count() AS n FROM system.settings WHERE name = {name:String}"


def materialized_ctes(client: ArrowClient) -> bool:
    """Whether the engine behind ``client`` can compute a CTE once (it knows ``enable_materialized_cte``)."""
    return bool(client.query_arrow(_PROBE, {"name": MATERIALIZED_CTE}).to_pylist()[0]["n"])


class ArrowClient(Protocol):
    """What the reader needs of a ClickHouse client."""

    def query_arrow(self, sql: str, parameters: dict[str, object]) -> pa.Table:
        """Run one query with its ``{name:Type}`` parameters bound; its rows as an Arrow table."""


def _python(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_python(v) for v in value]
    if isinstance(value, dict):
        return {k: _python(v) for k, v in value.items()}
    return value


class ClickHouseResult:
    """The rows of one query, fetched once (DB-API's description, fetchall and fetchone)."""

    def __init__(self, table: pa.Table):
        self._names = list(table.column_names)
        columns = [[_python(v) for v in column.to_pylist()] for column in table.columns]
        self._rows = list(zip(*columns, strict=True)) if columns else []
        self._at = 0

    @property
    def description(self) -> Sequence[Sequence[object]]:
        return [(name, None, None, None, None, None, None) for name in self._names]

    def fetchall(self) -> list[tuple]:
        rows, self._at = self._rows[self._at :], len(self._rows)
        return rows

    def fetchone(self) -> tuple | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]


class ClickHouseReader:
    """A Reader (collectors/storage/reader.py) over a ClickHouse client."""

    def __init__(self, client: ArrowClient, materialized: bool = False):
        self._client = client
        self._materialized = materialized
        self._settings = _SETTINGS_CLAUSE + (_MATERIALIZED_CLAUSE if materialized else "")

    def execute(self, query: str, parameters: Parameters | None = None) -> ClickHouseResult:
        sql, values = translate(query, parameters, self._materialized)
        return ClickHouseResult(self._client.query_arrow(sql + self._settings, values))

    def close(self) -> None:
        """Nothing to release: the client belongs to whoever made the reader."""
