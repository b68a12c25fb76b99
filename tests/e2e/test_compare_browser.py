"""The Compare page in a real browser: the sync_vs_events scenario is run from the page, Pub/Sub then a
Redis Stream, and the figures the table shows are checked against each run's recorded orders (the
scenario's own record of what each side accepted, failed, shipped late and lost), counted here."""

from __future__ import annotations

import json
import re

import pytest

from devtools.processes import running_dashboard
from tests.e2e.conftest import full_screenshot
from tests.e2e.test_demo_browser import open_page, poll
from tests.processes import Collectors

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

WAIT_S = 240
SECONDS = "11"  # 0.55 of the default phases: shipping slow from 3.85 s, down from 6.05 s to 8.8 s
SYNC, PUBSUB, STREAM = "Synchronous (HTTP)", "Event-driven (Pub/Sub)", "Event-driven (Redis Stream)"


@pytest.fixture(scope="module")
def dashboard(redis_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("compare")
    collectors = Collectors(redis_server.url)
    env = {"EVENTSCOPE_CONTROLS": "1", "REDIS_URL": redis_server.url, "TMPDIR": str(workdir)}
    try:
        with running_dashboard(collectors.api, WAIT_S, extra_env=env) as url:
            yield url, workdir
    finally:
        collectors.stop()


def run_from_page(page, variant: str, runs_before: int) -> None:
    page.get_by_text(variant, exact=True).first.click()
    field = page.get_by_label("Seconds")
    field.fill(SECONDS)
    field.press("Enter")
    page.get_by_role("button", name="Run the comparison").click()
    finished = re.compile(r"sync_vs_events.*: finished \(exit code 0\)")
    poll(lambda: page.get_by_text(finished).count(), WAIT_S, f"the {variant} comparison to finish")
    poll(lambda: len(rows(page)[0]) == 4 + runs_before, WAIT_S, "the table to show the run")  # aspect, measure, sync


def rows(page) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """(header, {(aspect, measure): the side columns}) of the comparison table."""
    script = """() => {
        const grid = [...document.querySelectorAll('[data-testid=stDataFrame] table[role=grid]')][0];
        if (!grid) return [[], []];
        const header = [...grid.querySelectorAll('[role=columnheader]')].map(c => c.textContent.trim());
        const body = [...grid.querySelectorAll('tbody [role=row]')]
            .map(row => [...row.querySelectorAll('[role=gridcell]')].map(c => c.textContent.trim()));
        return [header, body];
    }"""
    header, body = page.evaluate(script)
    return header, {(r[0], r[1]): r[2:] for r in body if len(r) >= 3}


def recorded(workdir, variant: str) -> dict:
    paths = sorted(workdir.glob("eventscope-scenarios-*/*-sync_vs_events.results.json"))
    documents = [json.loads(p.read_text()) for p in paths]
    return [d for d in documents if d["variant"] == variant][-1]


def while_down(results: dict, side: str) -> list[dict]:
    return [o for o in results["sides"][side]["orders"] if o["phase"] == "shipping_down"]


def cell(table: dict, header: list[str], measure: str, column: str) -> str:
    (aspect_measure,) = [key for key in table if key[1] == measure]
    return table[aspect_measure][header.index(column) - 2]


def test_the_table_shows_what_each_side_did_while_shipping_was_down(dashboard, page, screenshots):
    url, workdir = dashboard
    open_page(page, url, "compare", "Synchronous vs event-driven")
    run_from_page(page, "Pub/Sub", 0)
    header, table = rows(page)
    pubsub = recorded(workdir, "pubsub")
    sync_down, events_down = while_down(pubsub, "sync"), while_down(pubsub, "events")
    assert header[2:] == [SYNC, PUBSUB]
    assert cell(table, header, "orders placed while shipping was down", SYNC) == str(len(sync_down))
    failed = sum(o["outcome"] == "failed" for o in sync_down)
    assert failed and cell(table, header, "failed (a service did not answer)", SYNC) == str(failed)
    assert cell(table, header, "accepted", SYNC) == str(sum(o["accepted_ns"] is not None for o in sync_down))
    lost = sum(o["outcome"] == "lost" for o in events_down)
    assert lost and cell(table, header, "lost (paid, never shipped)", PUBSUB) == str(lost)
    assert cell(table, header, "accepted", PUBSUB) == str(len(events_down))
    assert cell(table, header, "services that must be up to accept an order", PUBSUB) == "1: orders"
    assert cell(table, header, "services that must be up to accept an order", SYNC).startswith("6: ")

    run_from_page(page, "Redis Stream", 1)
    header, table = rows(page)
    stream = recorded(workdir, "stream")
    events_down = while_down(stream, "events")
    _, back_ns = (stream["started_ns"] + int(p["end_s"] * 1e9) for p in stream["phases"][2:4])
    late = sum(o["outcome"] == "shipped" and o["done_ns"] >= back_ns for o in events_down)
    assert header[2:] == [SYNC, PUBSUB, STREAM]
    assert cell(table, header, "lost (paid, never shipped)", STREAM) == "0"
    assert late and cell(table, header, "delayed (shipped once shipping was back)", STREAM) == str(late)
    assert cell(table, header, "lost (paid, never shipped)", PUBSUB) == str(lost)  # the earlier run stays
    full_screenshot(page, screenshots / "compare.png")
