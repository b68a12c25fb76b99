"""The Scenarios page runs a scenario and shows its table (AppTest): a scenario without faults still lists
every fault kind of the shop's ``faults --json`` listing, each with injected 0, found 0, missed 0, extra 0 as
integers."""

from __future__ import annotations

import time

import pytest
import streamlit as st

from dashboard import sample_cli, scoring
from tests.integration.test_dashboard_pages import open_page, texts
from tests.integration.test_scenario_scoring import settled
from tests.processes import Collectors

pytestmark = pytest.mark.integration

FINISHED_WITHIN_S = 120


@pytest.fixture(scope="module")
def process(redis_server):
    """One collectors process for the module: the table scores a run from its own start, and the pages that
    cannot use a listing store nothing."""
    collectors = Collectors(redis_server.url)
    yield collectors
    collectors.stop()
    assert "Traceback" not in collectors.log(), collectors.log()


def test_a_scenario_without_faults_shows_every_detector_at_zero(process, redis_server, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("EVENTSCOPE_CONTROLS", "1")  # the test's own private redis-server
    app = open_page(process.api, "scenarios", monkeypatch, scenario="schema_evolution")
    [seconds] = [n for n in app.number_input if n.label == "Seconds"]
    seconds.set_value(5).run()
    [start] = [b for b in app.button if b.label == "Start scenario"]
    start.click().run()
    deadline = time.monotonic() + FINISHED_WITHIN_S
    while "finished (exit code 0)" not in texts(app) and time.monotonic() < deadline:
        time.sleep(1)
        app.run()
    assert "finished (exit code 0)" in texts(app), texts(app)
    settled(process)  # the collectors store the last spans the run flushed on exit
    app.run()
    [table] = [d.value for d in app.dataframe if "found at" in d.value.columns]
    kinds = scoring.sightings(sample_cli.faults().items).kinds
    assert list(table["fault"]) == [k.fault for k in kinds] and len(kinds) == 10
    assert list(table["seen as"]) == [d.finding for d in scoring.FINDINGS]
    counts = table[["injected", "found", "missed", "extra"]]
    assert counts.to_numpy().tolist() == [[0, 0, 0, 0]] * len(kinds)
    assert {str(t) for t in counts.dtypes} == {"Int64"}
    assert "Nothing was injected: every detector looked" in texts(app)


@pytest.mark.parametrize(
    ("listing", "said"),
    [
        (
            sample_cli.Listing(error="`python -m sample_system faults --json` did not print a JSON list"),
            "did not print",
        ),
        (sample_cli.Listing(items=[{"name": "reorder", "seen_as": "shuffled", "unit": "event"}]), "shuffled"),
        (sample_cli.Listing(items=[{"name": "reorder", "seen_as": "late", "unit": "**bold**"}]), "\\*\\*bold\\*\\*"),
    ],
)
def test_a_faults_listing_the_page_cannot_use_is_a_notice_not_a_crash(
    listing, said, process, redis_server, monkeypatch
):
    monkeypatch.setattr(sample_cli, "faults", lambda: listing)
    st.cache_data.clear()  # the page caches the listing for a minute
    try:
        monkeypatch.setenv("REDIS_URL", redis_server.url)
        app = open_page(process.api, "scenarios", monkeypatch, scenario="happy_path")
        [warning] = [w.value for w in app.warning if "cannot be scored" in w.value]
        assert said in warning
    finally:
        st.cache_data.clear()
