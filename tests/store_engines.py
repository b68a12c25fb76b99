"""The engines a store can be opened on in tests, so one test can hold every engine to the same behaviour."""

from __future__ import annotations

from pathlib import Path

from collectors.storage import spec
from collectors.storage.store import Store

ENGINES = ("duckdb", "chdb")
"""In-process engines; a ClickHouse server is tested only where EVENTSCOPE_TEST_CLICKHOUSE_URL names one."""


def open_store(engine: str, directory: Path, queue_limit: int = 256) -> Store:
    """A new, empty store on ``engine`` under ``directory``."""
    location = directory / f"store.{engine}"
    return spec.open_store(spec.parse(f"{engine}:{location}"), queue_limit)
