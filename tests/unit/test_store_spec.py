"""The --store value: each engine's form is read, anything else is refused at start with the reason."""

from __future__ import annotations

import subprocess
import sys

import pytest

from collectors import config as collectors_config
from collectors.storage import spec
from devtools.processes import ROOT


@pytest.mark.parametrize(
    "value, expected",
    [
        (".eventscope/store.duckdb", spec.StoreSpec("duckdb", path=".eventscope/store.duckdb")),
        (":memory:", spec.StoreSpec("duckdb", path=":memory:")),
        ("duckdb:/tmp/a b.duckdb", spec.StoreSpec("duckdb", path="/tmp/a b.duckdb")),
        ("chdb:/var/lib/eventscope", spec.StoreSpec("chdb", path="/var/lib/eventscope")),
        ("CHDB:rel/dir", spec.StoreSpec("chdb", path="rel/dir")),
        (
            "clickhouse://ch.internal:8123/eventscope",
            spec.StoreSpec("clickhouse", host="ch.internal", port=8123, database="eventscope"),
        ),
        (
            "clickhouse://writer:p%40ss@10.0.0.5:8443/otel",
            spec.StoreSpec(
                "clickhouse", host="10.0.0.5", port=8443, database="otel", username="writer", password="p@ss"
            ),
        ),
        ("clickhouse://[::1]:8123/db", spec.StoreSpec("clickhouse", host="::1", port=8123, database="db")),
        (
            "clickhouse://ch:8123/otel?tables=exporter",
            spec.StoreSpec("clickhouse", host="ch", port=8123, database="otel", read_mode=True),
        ),
        (
            "clickhouse://ch:8123/es?tables=eventscope",
            spec.StoreSpec("clickhouse", host="ch", port=8123, database="es"),
        ),
        ("chdb:/data/otel?tables=exporter", spec.StoreSpec("chdb", path="/data/otel", read_mode=True)),
    ],
)
def test_each_engine_form_is_read(value, expected):
    assert spec.parse(value) == expected


GARBAGE = [
    "",
    "   ",
    "chdb:",
    "duckdb:",
    "chdb:  ",
    "chdb://host:1/db",
    "duckdb://x",
    "clickhouse:host:8123/db",
    "clickhouse://",
    "clickhouse://host/db",
    "clickhouse://host:/db",
    "clickhouse://host:0/db",
    "clickhouse://host:99999/db",
    "clickhouse://host:port/db",
    "clickhouse://:8123/db",
    "clickhouse://host:8123",
    "clickhouse://host:8123/",
    "clickhouse://host:8123/a-b",
    "clickhouse://host:8123/db;DROP TABLE x",
    "clickhouse://host:8123/db/more",
    "clickhouse://host:8123/db?secure=1",
    "clickhouse://host:8123/db?tables=",
    "clickhouse://host:8123/db?tables=exporter&tables=eventscope",
    "clickhouse://host:8123/db?tables=Exporter",
    "clickhouse://host:8123/db#tables=exporter",
    "chdb:/data?tables=both",
    "chdb:?tables=exporter",
    "clickhouse://ho st:8123/db",
    "redis://localhost:6379",
    "postgres:store",
    "http://host:8123/db",
    "store\0.duckdb",
    "chdb:\0",
]


@pytest.mark.parametrize("value", GARBAGE)
def test_garbage_is_refused_with_a_reason(value):
    with pytest.raises(spec.StoreSpecError) as refused:
        spec.parse(value)
    assert str(refused.value)


@pytest.mark.parametrize("value", GARBAGE[2:])  # empty values fall back to the default store, as before
def test_the_config_names_the_setting(value):
    with pytest.raises(collectors_config.ConfigError, match="EVENTSCOPE_STORE"):
        collectors_config.load_config({"EVENTSCOPE_STORE": value})
    with pytest.raises(collectors_config.ConfigError, match="--store"):
        collectors_config.load_config({}, store=value)


def test_a_password_is_never_shown():
    value = "clickhouse://u:hunter2@host:8123/a-b"
    with pytest.raises(spec.StoreSpecError) as refused:
        spec.parse(value)
    assert "hunter2" not in str(refused.value)
    config = collectors_config.load_config({"EVENTSCOPE_STORE": "clickhouse://u:hunter2@host:8123/db"})
    assert "hunter2" not in repr(config)
    assert "hunter2" not in spec.parse(config.store_path).describe()


@pytest.mark.parametrize("value", ["redis://localhost:6379", "clickhouse://host:8123/a-b", "chdb:"])
def test_serve_with_a_bad_store_exits_2_without_a_traceback(value):
    done = subprocess.run(
        [sys.executable, "-m", "collectors", "serve", "--store", value, "--grpc-listen", "off"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "configuration error: --store" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_server_exits_2_without_a_traceback():
    from devtools.processes import free_port

    done = subprocess.run(
        [sys.executable, "-m", "collectors", "serve", "--store", f"clickhouse://127.0.0.1:{free_port()}/db"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "cannot open the store" in done.stderr
    assert "Traceback" not in done.stderr
