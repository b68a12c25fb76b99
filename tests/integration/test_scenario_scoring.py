"""The Scenarios page's table against the ground truth: every scenario, at two seeds no other test uses.

Each scenario runs for real (short: ``SECONDS``), as the page starts it (``scenario run``, a process of
its own), against Redis and the collectors, both seeds side by side on two benches (a Redis and the
collectors tapping it, each kept for the whole module): a run mostly waits on its load's pace, and a
scenario owns its Redis's bus. The table is built by the page's own code (dashboard.scoring) from the
query API's answers since the run began. For every detector, in every scenario: found = injected, missed
0, extra 0, and the faults a scenario is about were injected at all (so the test can fail).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

from dashboard import sample_cli, scoring
from dashboard.scenario_runner import run_arguments
from sample_system import truth
from sample_system.scenarios import CATALOGUE
from sample_system.services import accounts
from tests.processes import Collectors, RedisServer, wait_until

pytestmark = pytest.mark.integration

SEEDS = (808, 4242)
SECONDS = {
    "lossy_consumer": 6,  # shipping is down from 3 s to 5.5 s
    "slow_consumer": 7,  # order-view is slow from 3 s on: two seconds of it make an episode
    "clock_skew": 5,  # the clock jumps at 3 s
}
"""Run time per scenario; the others inject from the start and run ``DEFAULT_SECONDS``."""
DEFAULT_SECONDS = 3
EXPECTED = {
    "happy_path": (),
    "duplicates": ("duplicate_publish", "double_subscription"),
    "reordering": ("reorder",),
    "lossy_consumer": ("consumer_crash", "drop_before_broker"),
    "slow_consumer": ("slow_consumer",),
    "poison_message": ("poison_message", "dead_letter"),
    "retries_and_dead_letters": ("transient_error",),  # a dead letter takes four failures in a row: may not come
    "schema_evolution": (),
    "event_sourcing_replay": (),
    "clock_skew": ("clock_skew",),
}
"""The fault kinds each scenario must inject (and the table must then find); every other kind stays 0."""
OPTIONAL = {"retries_and_dead_letters": {"dead_letter"}}
ALL_VANTAGES = {
    "duplicate_publish": ("bus", "inventory", "order-view"),
    "reorder": ("bus", "inventory", "order-view"),
    "poison_message": ("inventory", "order-view"),
    "clock_skew": ("inventory", "order-view"),
}
"""Kinds whose every injected fault each of these vantage points must have seen (the channel's groups)."""


@dataclasses.dataclass
class Bench:
    """A Redis and the collectors that tap it: a scenario owns its Redis's bus, so each seed gets its own."""

    redis: RedisServer
    collectors: Collectors


@pytest.fixture(scope="module")
def benches(redis_server):
    """Two benches, one per seed, so the two runs of a scenario go side by side (they mostly wait)."""
    second = RedisServer()
    made = [Bench(redis_server, Collectors(redis_server.url)), Bench(second, Collectors(second.url))]
    yield dict(zip(SEEDS, made, strict=True))
    for bench in made:
        bench.collectors.stop()
    second.stop()
    for bench in made:
        assert "Traceback" not in bench.collectors.log(), bench.collectors.log()


def api_get(base: str):
    def get(path: str, params) -> dict:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        with urllib.request.urlopen(f"{base}/api/v1/{path}?{query}", timeout=60) as response:
            return json.load(response)

    return get


def settled(collectors) -> None:
    """Wait until the store stops growing (the shop flushed its spans on close; the tap may trail)."""
    previous: dict = {}

    def stable() -> bool:
        nonlocal previous
        now = collectors.get("health")["store"]
        same, previous = now == previous, now
        return same

    wait_until(stable, timeout=60, interval=0.5, what="the store to settle")


def test_every_scenario_and_every_fault_kind_is_covered():
    assert set(EXPECTED) == set(CATALOGUE)
    assert {d.kind for d in scoring.DETECTORS} == set(truth.KINDS)


def scored(name: str, seed: int, bench: Bench, path: Path) -> dict:
    """Run one scenario on its bench as the page does (a process of its own); the table, extras and summary."""
    since_ns = time.time_ns()
    env = {"REDIS_URL": bench.redis.url, "OTEL_EXPORTER_OTLP_ENDPOINT": bench.collectors.api}
    env |= {"EVENTSCOPE_API": bench.collectors.api, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    done = subprocess.run(
        sample_cli.command(*run_arguments(name, path, SECONDS.get(name, DEFAULT_SECONDS), seed)),
        cwd=sample_cli.ROOT,
        env=sample_cli.environment({**os.environ, **env}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1].partition(": done ")[2])
    settled(bench.collectors)
    get = api_get(bench.collectors.api)
    found = scoring.gather(get, since_ns, (), grace_s=0)
    records = truth.read(path)
    table = scoring.table(records, found).set_index("fault")
    return {
        "table": table,
        "figures": table[["injected", "found", "missed", "extra", "found at"]].to_dict("index"),
        "extras": scoring.extras(records, found).to_dict("records"),
        "found": found,
        "summary": summary,
        "openapi": get("openapi.json", {}),
    }


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_the_scenario_table_matches_the_ground_truth_at_both_seeds(name, benches, tmp_path):
    with ThreadPoolExecutor(len(SEEDS)) as pool:
        runs = dict(
            zip(
                SEEDS,
                pool.map(lambda seed: scored(name, seed, benches[seed], tmp_path / f"{seed}.jsonl"), SEEDS),
                strict=True,
            )
        )
    for seed, run in runs.items():
        check(name, seed, run, benches[seed])


def check(name: str, seed: int, run: dict, bench: Bench) -> None:
    table, figures, extras = run["table"], run["figures"], run["extras"]
    assert table["extra"].sum() == 0 and table["missed"].sum() == 0, (seed, figures, extras[:10])
    assert (table["found"] == table["injected"]).all(), (seed, figures)
    injected = {kind for kind, row in figures.items() if row["injected"]}
    assert set(EXPECTED[name]) <= injected <= set(EXPECTED[name]) | OPTIONAL.get(name, set()), (seed, figures)
    for kind in injected & set(ALL_VANTAGES):
        n = figures[kind]["injected"]
        assert figures[kind]["found at"] == ", ".join(f"{v} {n}" for v in ALL_VANTAGES[kind]), (seed, figures[kind])
    if name == "slow_consumer":
        schema = {"$ref": "#/components/schemas/slow_consumers", "components": run["openapi"]["components"]}
        jsonschema.Draft202012Validator(schema).validate(run["found"]["slow_consumers"])
        assert figures["slow_consumer"]["found at"] == "order-view 1", (seed, figures)
    if name == "event_sourcing_replay":
        assert run["summary"]["replay"]["equal_to_live"], run["summary"]["replay"]
        assert min(accounts.live_balances(bench.redis.client()).values()) >= 0  # payments checked every wallet
