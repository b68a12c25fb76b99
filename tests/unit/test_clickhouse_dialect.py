"""The DuckDB-to-ClickHouse translation: parameters bound and typed, never spliced; DuckDB's semantics kept.

Where the translation's meaning matters, the ClickHouse text runs in chdb and its answer is checked against
DuckDB's for the same query.
"""

from __future__ import annotations

import duckdb
import pytest

from collectors.storage.clickhouse import dialect
from collectors.storage.clickhouse.reader import ClickHouseReader

chdb = pytest.importorskip("chdb")


class _Client:
    def __init__(self):
        self.connection = chdb.connect(":memory:")

    def query_arrow(self, sql: str, parameters: dict[str, object]):
        return self.connection.query(sql, "Arrowtable", params=parameters)


@pytest.fixture(scope="module")
def clickhouse() -> ClickHouseReader:
    return ClickHouseReader(_Client())


def test_named_and_positional_parameters_are_typed_placeholders():
    sql, values = dialect.translate("SELECT 1 WHERE $name = 'a' AND $ratio < 1", {"name": "x", "ratio": 0.5})
    assert "{name:String}" in sql and "{ratio:Float64}" in sql and "'x'" not in sql
    assert values == {"name": "x", "ratio": 0.5}
    sql, values = dialect.translate("SELECT ? + 1, ?, ?", [5, "it's", True])
    assert "{p0:Int64}" in sql and "{p1:String}" in sql and "{p2:Bool}" in sql and "it's" not in sql
    assert values == {"p0": 5, "p1": "it's", "p2": True}


def test_a_none_parameter_is_the_constant_null():
    sql, values = dialect.translate("SELECT $x IS NULL", {"x": None})
    assert "NULL IS NULL" in sql and values == {}


def test_text_in_quotes_and_comments_is_not_a_parameter():
    sql, _ = dialect.translate("SELECT '$x ?' -- it's $y ?\n", {})
    assert "'$x ?'" in sql


@pytest.mark.parametrize("garbage", ["SELEC 1 FROM", "SELECT (", "SELECT json_extract_string(a, '$[0].b[1]') FROM t"])
def test_a_query_that_cannot_be_translated_is_a_clear_error(garbage):
    with pytest.raises(dialect.TranslationError):
        dialect.translate(garbage)


def test_an_unbindable_parameter_is_a_clear_error():
    with pytest.raises(dialect.TranslationError, match="parameter type"):
        dialect.translate("SELECT $x", {"x": object()})
    with pytest.raises(dialect.TranslationError, match="no value"):
        dialect.translate("SELECT $x", {})


QUERIES = [
    (
        "SELECT quantile_cont(x::DOUBLE, 0.95), quantile_cont(x::DOUBLE, 0.5) FILTER (x > 2) "
        "FROM (VALUES (1.5), (2.25), (7.0)) t(x)",
        {},
    ),
    ("SELECT count(*) FILTER (x > 10) - 1, list(x ORDER BY x) FROM (VALUES (3), (1), (2)) t(x)", {}),
    ("SELECT min(x), quantile_cont(x, 0.5) FROM (VALUES (1)) t(x) WHERE x > 5", {}),
    ("SELECT bool_or(x > 1), bool_and(x > 1), 1 < 2 AS b FROM (VALUES (1), (2)) t(x)", {}),
    ("SELECT $a IS NULL OR $b = 'q', ? AS n", {"a": None, "b": "q"}),
    ("SELECT TRY_CAST(('0x' || '00ff') AS UBIGINT), TRY_CAST(('0x' || 'zz') AS UBIGINT)", {}),
    ("SELECT json_extract_string('{\"a\": 1, \"b\": \"x\"}', '$.b'), json_extract_string('{\"a\": 1}', '$.c')", {}),
    ("SELECT concat('a', NULL, 1)", {}),
]


@pytest.mark.parametrize(("sql", "parameters"), QUERIES)
def test_the_translation_answers_as_duckdb_does(clickhouse, sql, parameters):
    positional = [7] if "?" in sql else None
    values = positional if positional is not None else parameters
    if positional is not None:  # one query with both kinds: DuckDB takes the named ones only
        sql, values = sql.replace("?", "$n"), {**parameters, "n": 7}
    expected = duckdb.connect().execute(sql, values).fetchall()
    assert clickhouse.execute(sql, values).fetchall() == expected
