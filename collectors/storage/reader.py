"""The one interface every analysis reads the store through: SQL with bound parameters in, rows out.

Analyses never open a database: they receive a ``Reader`` and call ``execute(sql, parameters)``, then
``fetchall()`` / ``fetchone()`` (and ``description`` for column names) on what it returns, the part of
the Python DB-API that a DuckDB cursor (``Store.reader()``) already is. The SQL is DuckDB's dialect with
named ``$parameters`` (collectors/analyses/filters.py ``bind``) or positional ``?``; a second engine (ClickHouse)
implements this protocol and answers the same queries with the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

Parameters = Mapping[str, object] | Sequence[object]


@runtime_checkable
class Result(Protocol):
    """The rows of one executed query."""

    @property
    def description(self) -> Sequence[Sequence[object]] | None:
        """One entry per column, its name first (DB-API)."""

    def fetchall(self) -> list[tuple]:
        """Every remaining row."""

    def fetchone(self) -> tuple | None:
        """The next row, or None when there is none."""


@runtime_checkable
class Reader(Protocol):
    """A read-only view of the store for one thread; the analyses' only way in."""

    def execute(self, query: str, parameters: Parameters = ...) -> Result:
        """Run one query with its parameters bound (never spliced into the text)."""

    def close(self) -> None:
        """Release it (whoever asked the store for it closes it)."""
