"""The store's tables on ClickHouse (chdb): the schema's columns, values bound as parameters whatever they hold,
and a span inserted twice past the write path's check still read once."""

from __future__ import annotations

import pyarrow as pa
import pytest

from collectors.storage import schema
from collectors.storage.clickhouse import ddl
from collectors.storage.clickhouse.client import ChdbClient, ClickHouseError
from collectors.storage.clickhouse.engine import expired_traces, plain_batch
from collectors.storage.store import Job, group_batches
from tests.store_engines import open_store
from tests.unit.test_ingest_store_identity import span


@pytest.fixture
def client(tmp_path):
    client = ChdbClient(str(tmp_path / "chdb"))
    for statement in (*ddl.STATEMENTS, *ddl.MIGRATIONS):
        client.command(statement)
    yield client
    client.close()


def test_every_table_has_the_schema_s_columns_in_order(client):
    for table in schema.TABLES:
        described = client.query_arrow(f"DESCRIBE TABLE {table}", {}).to_pylist()
        assert [row["name"] for row in described] == list(schema.names(table))
        for row, column in zip(described, schema.TABLES[table], strict=True):
            assert row["type"] == ddl.column_type(column)
            if not column.sql.endswith("NOT NULL") and not column.base_type.endswith("[]"):
                assert row["type"].startswith("Nullable(")


def test_the_metric_views_have_the_duckdb_views_columns(client):
    gauge = client.query_arrow("SELECT * FROM otel_metrics_gauge", {}).schema.names
    assert "Value" in gauge and "MetricType" not in gauge and "BucketCounts" not in gauge


def test_the_opening_statements_can_run_again(client):
    for statement in (*ddl.STATEMENTS, *ddl.MIGRATIONS):
        client.command(statement)


HOSTILE = ["", "it's", "back\\slash", "tab\there", "new\nline", "\\N", "NULL", "'; DROP TABLE otel_traces; --", "é🙂"]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_string_parameter_comes_back_as_it_went(client, value):
    answer = client.query_arrow("SELECT {v:String} AS v, {a:Array(String)} AS a", {"v": value, "a": [value, "x"]})
    assert answer.to_pylist() == [{"v": value, "a": [value, "x"]}]
    assert client.query_arrow("SELECT count() AS n FROM otel_traces", {}).to_pylist() == [{"n": 0}]


def test_null_and_numbers_are_bound_as_values(client):
    answer = client.query_arrow(
        "SELECT {n:Nullable(Int64)} AS n, {i:Int64} AS i, {f:Float64} AS f", {"n": None, "i": -(2**63), "f": 0.5}
    )
    assert answer.to_pylist() == [{"n": None, "i": -(2**63), "f": 0.5}]


def test_bad_sql_is_a_clickhouse_error(client):
    with pytest.raises(ClickHouseError, match="otel_nothing"):
        client.query_arrow("SELECT * FROM otel_nothing", {})


def test_a_span_inserted_twice_by_two_writers_is_read_once_with_final(client):
    """The case the write path's check cannot see: two processes inserting the same retried export at once."""
    batch = plain_batch(group_batches([Job({"otel_traces": [span(1, 1, 5), span(1, 2, 6)]})])["otel_traces"])
    client.insert_arrow("otel_traces", batch)
    ChdbClient(client.path).insert_arrow("otel_traces", batch)
    assert client.query_arrow("SELECT count() AS n FROM otel_traces", {}).to_pylist() == [{"n": 4}]
    assert client.query_arrow("SELECT count() AS n FROM otel_traces FINAL", {}).to_pylist() == [{"n": 2}]
    client.command("OPTIMIZE TABLE otel_traces FINAL")  # what a background merge does
    assert client.query_arrow("SELECT count() AS n FROM otel_traces", {}).to_pylist() == [{"n": 2}]


def test_expired_traces_keep_the_newest_and_whole_traces():
    ages = pa.table({"TraceId": ["c", "a", "b"], "EndNs": [100, 51, 21], "Spans": [1, 2, 2]})  # newest first
    assert expired_traces(ages, cutoff_ns=30, max_spans=0) == ["b"]
    assert expired_traces(ages, cutoff_ns=None, max_spans=3) == ["b"]
    assert expired_traces(ages, cutoff_ns=10_000, max_spans=1) == ["a", "b"]
    assert expired_traces(ages.slice(0, 1), cutoff_ns=10_000, max_spans=0) == []


def test_a_retried_batch_of_many_traces_is_recognised_across_lookup_chunks(tmp_path, monkeypatch):
    from collectors.storage.clickhouse import engine

    monkeypatch.setattr(engine, "LOOKUP_CHUNK", 2)
    store = open_store("chdb", tmp_path)
    try:
        batch = [span(trace, 1, 1_000 + trace) for trace in range(1, 8)]
        store.write("otel_traces", batch[:5])
        store.write("otel_traces", batch)
        reader = store.reader()
        assert reader.execute("SELECT count() FROM otel_traces").fetchall() == [(7,)]
        reader.close()
    finally:
        store.close()


def test_every_table_writes_its_parts_to_disk_before_an_insert_returns(client):
    for table in schema.TABLES:
        created = client.query_arrow(f"SHOW CREATE TABLE {table}", {}).column(0)[0].as_py()
        assert "fsync_after_insert = 1" in created and "fsync_part_directory = 1" in created
