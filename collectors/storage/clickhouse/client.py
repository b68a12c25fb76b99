"""Talking to ClickHouse: one small interface over the in-process engine (chdb) and a server (clickhouse-connect).

The store and the ClickHouse reader need four things of ClickHouse: run a query with bound ``{name:Type}``
parameters and get an Arrow table back, run a statement, insert an Arrow table, close. ``ChdbClient`` runs the
engine inside this process on a directory (``chdb:PATH``); ``ServerClient`` talks to a server over HTTP
(``clickhouse://[user[:password]@]HOST:PORT/DB``). Both bind every value as a query parameter, never spliced
into the SQL text.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import pyarrow as pa

Parameters = Mapping[str, object]
READ_SETTINGS = {"final": 1}
"""A server store's readers read every ReplacingMergeTree table as with FINAL: a span that two collectors
processes inserted at the same instant counts once before the merge that collapses it (collectors/storage/clickhouse/
ddl.py). chdb needs none: one process holds its directory, and its writer's check is exact."""


class ClickHouseError(RuntimeError):
    """ClickHouse refused a statement or could not be reached; the message says why."""


@runtime_checkable
class Client(Protocol):
    """What the store and the reader use of ClickHouse."""

    def query_arrow(self, sql: str, parameters: Parameters) -> pa.Table:
        """The rows of one query, its ``{name:Type}`` placeholders bound to ``parameters``."""

    def command(self, sql: str, parameters: Parameters | None = None) -> None:
        """Run one statement (DDL, DELETE, ...)."""

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        """Insert every row of ``data`` into ``table``, its columns named by the Arrow schema's field names."""

    def close(self) -> None:
        """Release the connection."""


# chdb takes parameter values in ClickHouse's text format: scalars as text (tab-separated escaping, \N for
# NULL), arrays as literals.
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
_LITERAL_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
NULL_TEXT = "\\N"


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.translate(_LITERAL_ESCAPES) + "'"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    raise TypeError(f"cannot bind a {type(value).__name__} as a ClickHouse parameter")


def parameter_text(value: object) -> str:
    """One parameter value in the text form chdb binds (what a server's HTTP interface takes too)."""
    if value is None:
        return NULL_TEXT
    if isinstance(value, str):
        return value.translate(_TEXT_ESCAPES)
    if isinstance(value, bool | int | float):
        return _literal(value)
    return _literal(value)


def _column_list(data: pa.Table) -> str:
    return ", ".join(f"`{name}`" for name in data.schema.names)


class ChdbClient:
    """The ClickHouse engine in this process, its data in one directory.

    Calls are serialised by one lock per process: the engine is one per process whatever the number of
    connections to it, and its readers share the store's client (``SharedClient``).
    """

    _lock = threading.Lock()

    def __init__(self, path: str, database: str | None = None):
        import chdb  # loaded only when a chdb store is used

        os.makedirs(path, exist_ok=True)
        self.path = path
        self._chdb = chdb
        try:
            with self._lock:
                self._conn = chdb.connect(path)
                if database is not None:  # a checked name (spec.py, exporter.py)
                    self._conn.query(f"CREATE DATABASE IF NOT EXISTS `{database}`")
                    self._conn.query(f"USE `{database}`")
        except Exception as exc:
            raise ClickHouseError(f"cannot open chdb at {path!r}: {exc}") from exc

    def query_arrow(self, sql: str, parameters: Parameters) -> pa.Table:
        params = {name: parameter_text(value) for name, value in parameters.items()}
        return self._run(sql, "Arrowtable", params)

    def command(self, sql: str, parameters: Parameters | None = None) -> None:
        self._run(sql, "CSV", {name: parameter_text(value) for name, value in (parameters or {}).items()})

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        batch = data  # noqa: F841 - chdb's Python() table function finds the table by this local name
        self._run(f"INSERT INTO {table} ({_column_list(data)}) SELECT {_column_list(data)} FROM Python(batch)", "CSV")

    def _run(self, sql: str, fmt: str, params: dict[str, str] | None = None):
        try:
            with self._lock:
                return self._conn.query(sql, fmt, params=params or {})
        except Exception as exc:
            raise ClickHouseError(str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class ServerClient:
    """A ClickHouse server over its HTTP interface (clickhouse-connect); one connection pool per client.

    clickhouse-connect's client is not meant to be shared by threads running queries at once, so calls are
    serialised by a lock; readers that want to run at the same time open clients of their own. ``settings``
    apply to every query of the client.
    """

    def __init__(
        self,
        host: str,
        port: int,
        database: str,
        username: str = "default",
        password: str = "",
        settings: Mapping[str, object] | None = None,
    ):
        import clickhouse_connect  # loaded only when a server store is used

        self._lock = threading.Lock()
        try:
            self._client = clickhouse_connect.get_client(
                host=host, port=port, username=username, password=password, connect_timeout=5, settings=settings
            )
            self._client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")  # a checked name (spec.py)
            self._client.database = database
        except Exception as exc:
            raise ClickHouseError(f"cannot reach ClickHouse at {host}:{port}/{database}: {exc}") from exc

    def query_arrow(self, sql: str, parameters: Parameters) -> pa.Table:
        try:
            with self._lock:
                return self._client.query_arrow(sql, parameters=dict(parameters), use_strings=True)
        except Exception as exc:
            raise ClickHouseError(str(exc)) from exc

    def command(self, sql: str, parameters: Parameters | None = None) -> None:
        try:
            with self._lock:
                self._client.command(sql, parameters=dict(parameters or {}))
        except Exception as exc:
            raise ClickHouseError(str(exc)) from exc

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        try:
            with self._lock:
                self._client.insert_arrow(table, data)
        except Exception as exc:
            raise ClickHouseError(str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            self._client.close()


class SharedClient:
    """Another user's view of one client: every call goes to it, except ``close``, which its owner does.

    chdb serialises queries within a process anyway, so a chdb store's readers share the writer's client instead
    of opening the directory again for each request.
    """

    def __init__(self, client: Client):
        self._client = client

    def query_arrow(self, sql: str, parameters: Parameters) -> pa.Table:
        return self._client.query_arrow(sql, parameters)

    def command(self, sql: str, parameters: Parameters | None = None) -> None:
        self._client.command(sql, parameters)

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        self._client.insert_arrow(table, data)

    def close(self) -> None:
        """Nothing: the owner closes the client."""
