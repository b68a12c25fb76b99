"""The shop's fault scenarios, stored by a collectors process as it stores any system's telemetry, answered alike
on ClickHouse (chdb) and on DuckDB.

A collectors process with a DuckDB store and the bus tap takes the OTLP of three scenarios run one after the other
against a real Redis (duplicates, a crashing consumer with drops, poison messages ending as dead letters); once it is
stopped, its tables are copied into chdb and every endpoint's function runs on both, as
tests/unit/test_store_parity.py compares them on generated data, with filters and streams taken from what the
shop stored (its busiest channel and the service consuming it, a consumer group and an event type, its busiest
streams at the bus and at two groups).
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys

import pytest

from collectors.analyses.filters import Filters
from collectors.storage.clickhouse.reader import ClickHouseReader
from collectors.storage.store import Store
from tests.integration.test_accuracy_scenarios import settled
from tests.processes import ROOT, Collectors
from tests.unit.test_store_parity import _answers, _copy, _differences, _first_difference
from tests.unit.test_store_parity import clickhouse as clickhouse  # noqa: F401 (the module's chdb, a fixture)

pytest.importorskip("chdb")
pytestmark = pytest.mark.integration

SCENARIOS = {"duplicates": 3, "lossy_consumer": 6, "poison_message": 3}
"""Each scenario and its seconds: long enough for its faults (shipping is down from 3 s to 5.5 s, then back behind a
gap; poison messages end as dead letters from the start)."""


@pytest.fixture(scope="module")
def stored(redis_server, tmp_path_factory) -> str:
    """The DuckDB file a collectors process wrote while the scenarios ran (the process stopped)."""
    directory = tmp_path_factory.mktemp("shop-parity")
    path = str(directory / "store.duckdb")
    collectors = Collectors(redis_server.url, store=path)
    try:
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collectors.api, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        for name, seconds in SCENARIOS.items():
            command = [sys.executable, "-m", "sample_system", "scenario", "run", name, "--seconds", str(seconds)]
            command += ["--seed", "7", "--truth", str(directory / f"{name}.jsonl"), "--redis-url", redis_server.url]
            result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stderr[-2000:]
        settled(collectors)
    finally:
        collectors.stop()
    return path


def _busiest(duck, sql: str, count: int) -> list[tuple]:
    return [tuple(row[:-1]) for row in duck.execute(sql).fetchall()[:count]]


def _shop_filters(duck) -> tuple:
    """No filter, the middle half of the run, the busiest channel with its consumer, a group with an event type."""
    first, last = duck.execute("SELECT min(Timestamp), max(Timestamp) FROM otel_traces").fetchone()
    quarter = (last - first) // 4
    ((channel, service),) = _busiest(
        duck,
        "SELECT MsgDestination, ServiceName, count(*) AS n FROM otel_traces WHERE SpanKind = 'Consumer' "
        "AND MsgDestination IS NOT NULL GROUP BY ALL ORDER BY n DESC, 1, 2",
        1,
    )
    ((group, kind),) = _busiest(
        duck,
        "SELECT MsgConsumerGroup, CeType, count(*) AS n FROM otel_traces WHERE MsgConsumerGroup IS NOT NULL "
        "AND CeType IS NOT NULL GROUP BY ALL ORDER BY n DESC, 1, 2",
        1,
    )
    return (
        Filters(),
        Filters(since_ns=first + quarter, until_ns=last - quarter),
        Filters(channel=channel, service=service),
        Filters(group=group, type=kind),
    )


def _shop_streams(duck) -> tuple:
    """The busiest stream at the bus tap, and the busiest stream of each of the two busiest consumer groups."""
    ((channel, source, partition),) = _busiest(
        duck,
        "SELECT Channel, Source, PartitionKey, count(*) AS n FROM bus_messages WHERE Valid AND Sequence IS NOT NULL "
        "GROUP BY ALL ORDER BY n DESC, 1, 2, 3",
        1,
    )
    streams = [(Filters(channel=channel), source, partition, "bus")]
    by_group = _busiest(
        duck,
        "SELECT MsgConsumerGroup, MsgDestination, CeSource, PartitionKey, count(*) AS n FROM otel_traces "
        "WHERE MsgConsumerGroup IS NOT NULL AND Sequence IS NOT NULL GROUP BY ALL ORDER BY n DESC, 1, 2, 3, 4",
        100,
    )
    firsts = collections.OrderedDict()
    for group, destination, source_of, key in by_group:
        firsts.setdefault(group, (Filters(channel=destination), source_of, key, group))
    streams += list(firsts.values())[:2]
    return tuple(streams)


@pytest.mark.parametrize("clickhouse", ["views"], indirect=True)  # the kept tables: the unit parity test
def test_the_shops_scenarios_answer_the_same_on_clickhouse(stored, clickhouse):  # noqa: F811
    store = Store(stored)
    try:
        duck = store.reader()
        assert duck.execute("SELECT count(*) FROM bus_messages").fetchone()[0] > 0
        filters, streams = _shop_filters(duck), _shop_streams(duck)
        assert len(streams) == 3
        trace_ids = [
            row[0] for row in duck.execute("SELECT TraceId FROM otel_traces ORDER BY SpanId LIMIT 4").fetchall()
        ]
        event_ids = [
            row[0]
            for row in duck.execute(
                "SELECT DISTINCT MsgMessageId FROM otel_traces WHERE MsgMessageId IS NOT NULL ORDER BY 1 LIMIT 4"
            ).fetchall()
        ]
        _copy(duck, clickhouse)
        expected = _answers(duck, trace_ids, event_ids, filters, streams)
        duck.close()
    finally:
        store.close()
    # the scenarios' faults are in what is compared, not only empty answers
    assert expected["duplicates 0"]["duplicates"] and expected["dead_letters 0"]
    assert any(s["lost"] or s["gaps"] for s in expected["report 0"]["streams"])
    actual = _answers(ClickHouseReader(clickhouse, materialized=True), trace_ids, event_ids, filters, streams)
    differing = _differences(expected, actual)
    print(f"shop parity: {len(expected)} answers compared, {len(differing)} differ: {differing}")
    assert differing == [], [_first_difference(expected[name], actual.get(name)) for name in differing[:3]]
