"""``./run demo`` in the background, once for this module; headless Chromium drives the dashboard.

Every page renders without an error element; scenarios started from the Scenarios page show on the
Duplicates and Ordering pages; a trace opened from the Traces page shows its links; a click on a service
in the flow graph filters every page; Ctrl-C stops all.
Waits are conditions, never fixed sleeps, each with a generous deadline (WAIT_S): the browser, the demo and
other test suites share a loaded machine, and a poll returns as soon as its condition holds, so a long
deadline costs nothing when things are quick. A missing piece fails with a message saying what was not
seen, including a page that says a query API endpoint is not available.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import full_screenshot
from tests.processes import ROOT, free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]  # the demo starts inside the first test

URL_LINE = re.compile(r"eventscope dashboard: (http://\S+)")
PAGES = (
    ("", "Overview"),  # the default page lives at the root URL
    ("latency", "Latency"),
    ("ordering", "Ordering and loss"),
    ("duplicates", "Duplicates"),
    ("traces", "Traces"),
    ("event", "Event"),
    ("dead-letters", "Dead letters"),
    ("broker", "Broker"),
    ("instrumentation", "Instrumentation health"),
    ("contracts", "Contracts"),
    ("scenarios", "Scenarios"),
)
NOT_AVAILABLE = "no such endpoint"
"""How the collectors answer a path they do not serve (404): a page reading it shows this, and the test fails."""
SCENARIO_SECONDS = "5"
WAIT_S = 180
"""Deadline of every wait for the app: generous, since only a failure ever waits this long."""


@pytest.fixture(scope="module")
def demo():
    listen_port, dashboard_port = free_port(), free_port()
    env = {
        **os.environ,
        "EVENTSCOPE_LISTEN": f"127.0.0.1:{listen_port}",
        "EVENTSCOPE_DASHBOARD_PORT": str(dashboard_port),
        "EVENTSCOPE_STORE": os.path.join(tempfile.mkdtemp(prefix="eventscope-demo-"), "demo.duckdb"),
        "EVENTSCOPE_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
        "SAMPLE_RATE": "20",
    }
    env.pop("REDIS_URL", None)  # the demo must start its own redis-server
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    process = subprocess.Popen(
        [str(ROOT / "run"), "demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    url = None
    deadline = time.monotonic() + 240
    while url is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        match = URL_LINE.search(line)
        url = match.group(1) if match else None
    if url is None:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("./run demo did not print the dashboard URL")
    yield url, listen_port, process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def poll(check: Callable[[], object], seconds: float, what: str, interval: float = 0.5):
    """Call ``check`` until it returns something truthy; fail saying ``what`` was never seen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception:  # an element mid-rerender; try again
            result = None
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {seconds:.0f} s: {what}")


def metric_value(page, label: str) -> int:
    metric = page.locator('[data-testid="stMetric"]', has_text=label).first
    return int(metric.locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))


def shows(page, label: str, expected: int, seconds: float = 45) -> None:
    """Wait for a metric to show ``expected``; fail saying what it showed instead."""
    deadline, seen = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            seen = metric_value(page, label)
        except Exception:  # not rendered yet, or mid-rerender
            seen = None
        if seen == expected:
            return
        time.sleep(0.5)
    pytest.fail(f"{page.url}: '{label}' shows {seen}, {expected} were planted")


def open_page(page, url: str, path: str, title: str) -> None:
    page.goto(f"{url}/{path}")
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=WAIT_S * 1000)


def app_idle(page) -> bool:
    """True once Streamlit's running indicator is gone: every section of this run has drawn."""
    return page.locator('[data-testid="stStatusWidget"]').count() == 0


def fail_if_missing(page, what: str) -> None:
    """Fail naming the missing piece when the page says its query API endpoint does not exist."""
    if page.get_by_text(NOT_AVAILABLE).count():
        pytest.fail(f"{what}: the page says '{NOT_AVAILABLE}'")


def run_scenario(page, url: str, name: str, seconds: str = SCENARIO_SECONDS) -> None:
    open_page(page, url, f"scenarios?scenario={name}", "Scenarios")
    if page.get_by_text("Scenarios are not available").count():
        pytest.fail(
            f"the Scenarios page cannot list scenarios: {page.locator('[data-testid=stAlert]').first.inner_text()}"
        )
    field = page.get_by_label("Seconds")
    field.fill(seconds)
    field.press("Enter")
    page.get_by_role("button", name="Start scenario").click()
    poll(lambda: page.get_by_text(re.compile(rf"{name}.*: finished")).count(), WAIT_S, f"scenario {name} to finish")


def test_dashboard_shows_live_numbers(demo, page, screenshots):
    url, _, _ = demo
    page.goto(url)
    page.get_by_role("heading", name="Overview").wait_for(timeout=WAIT_S * 1000)
    first = poll(lambda: metric_value(page, "Bus messages"), WAIT_S, "bus messages on the Overview")
    poll(lambda: metric_value(page, "Bus messages") > first, WAIT_S, "the Overview numbers refreshing on their own")
    # consumer spans reach the collectors in the SDK's export batches (every few seconds), after the tap's copy
    poll(lambda: metric_value(page, "Deliveries") > 0, WAIT_S, "deliveries (consumer spans) on the Overview")
    assert page.locator('[data-testid="stException"]').count() == 0
    full_screenshot(page, screenshots / "overview.png")


@pytest.mark.parametrize(("path", "title"), PAGES)
def test_every_page_renders_without_an_error_element(demo, page, screenshots, path, title):
    url, _, _ = demo
    open_page(page, url, f"{path}?window=all", title)
    page.wait_for_load_state("networkidle")
    page.locator('[data-testid="stMain"]').get_by_text(re.compile(".")).first.wait_for(timeout=WAIT_S * 1000)
    poll(lambda: app_idle(page), WAIT_S, f"the {title} page to finish its first run")
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]'
    ).first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()
    full_screenshot(page, screenshots / f"{path or 'overview'}.png")


def test_a_duplicates_scenario_shows_on_the_duplicates_page(demo, page, screenshots):
    url, _, _ = demo
    run_scenario(page, url, "duplicates")
    full_screenshot(page, screenshots / "scenario-duplicates.png")
    open_page(page, url, "duplicates?window=all", "Duplicates")
    poll(
        lambda: page.locator('[data-testid="stMetric"]').count() or page.get_by_text(NOT_AVAILABLE).count(),
        WAIT_S,
        "the Duplicates page",
    )
    fail_if_missing(page, "duplicates")
    poll(lambda: metric_value(page, "Duplicated events") > 0, WAIT_S, "duplicated events on the Duplicates page")
    full_screenshot(page, screenshots / "duplicates-after-scenario.png")


def test_a_lossy_scenario_shows_gaps_on_the_ordering_page(demo, page, screenshots):
    url, _, _ = demo
    # shipping is down from 3 s to 5.5 s: run long enough for it to come back and leave a gap behind
    run_scenario(page, url, "lossy_consumer", seconds="9")
    open_page(page, url, "ordering?window=all", "Ordering and loss")
    poll(lambda: page.get_by_text(re.compile(r"arrivals ·|" + NOT_AVAILABLE)).count(), WAIT_S, "a sequence timeline")
    fail_if_missing(page, "sequences and loss")
    # shipping was down for part of the run: the events published meanwhile are lost to it at delivery
    poll(lambda: metric_value(page, "Lost at delivery") > 0, WAIT_S, "events lost at delivery on the Ordering page")
    shipping = "ordering?window=all&channel=shop.payments&group=shipping"
    open_page(page, url, shipping, "Ordering and loss")
    poll(lambda: page.get_by_text(re.compile(r"gaps: \d")).count(), WAIT_S, "a gap in shipping's sequence timeline")
    full_screenshot(page, screenshots / "ordering-after-scenario.png")


def test_a_trace_opened_from_the_traces_page_shows_its_links(demo, page, screenshots):
    url, _, _ = demo
    open_page(page, url, "traces?window=all", "Traces")
    poll(
        lambda: page.get_by_text(re.compile(r"traces, newest first|" + NOT_AVAILABLE)).count(),
        WAIT_S,
        "trace search results",
    )
    fail_if_missing(page, "trace search")
    page.get_by_label("Open a trace").click()
    options = page.get_by_role("option").all_inner_texts()
    richest = max(range(1, len(options)), key=lambda i: options[i].count(","))  # the most services
    page.get_by_role("option").nth(richest).click()
    caption = poll(
        lambda: page.get_by_text(re.compile(r"links out \d+")).first.inner_text(), WAIT_S, "the opened trace"
    )
    links = int(re.search(r"links out (\d+)", caption).group(1))
    assert links > 0, f"the opened trace shows no links: {caption}"
    full_screenshot(page, screenshots / "trace.png")


def click_node(page, label: str) -> bool:
    """Hover, then click the flow graph's node with this label (the marker drawn for the same point as the
    label); False when it is not drawn."""
    graph = page.locator('[data-testid="stPlotlyChart"]').first
    traces = graph.locator("g.trace.scatter")
    for index in range(traces.count()):
        labels = traces.nth(index).locator("g.textpoint text").all_text_contents()  # SVG: no inner text
        if label in labels:
            point = traces.nth(index).locator("path.point").nth(labels.index(label))
            point.scroll_into_view_if_needed()  # a big graph runs past the window: the mouse cannot hover there
            box = point.bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x - 5, y - 5)
            page.mouse.move(x, y)  # plotly picks the clicked point from the hover it computed
            page.get_by_text("click to filter every page").first.wait_for(timeout=WAIT_S * 1000)
            page.mouse.click(x, y)
            return True
    return False


def selection_shown(page) -> bool:
    """True while the flow graph shows a selected point (plotly dims the others)."""
    return page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=stPlotlyChart] path.point')]"
        ".some(p => parseFloat(getComputedStyle(p).opacity) < 1)"
    )


def filtered_by_a_click(page, service: str) -> bool:
    """One look at the Overview: True once the click's filter is in the URL. While the click is being
    handled (a point selected, or the app running) wait; when the page sits idle with nothing selected the
    click was lost (it came while the chart was still being set up), so click again."""
    if f"service={service}" in page.url:
        return True
    if selection_shown(page) or not settled(page):
        return False
    if not click_node(page, service):
        pytest.fail(f"no node labelled {service} in the flow graph")
    return False


def settled(page) -> bool:
    """True when the page ran to its last element and Streamlit stays idle for a few checks in a row: the
    running indicator only shows once a run has lasted a moment, so one idle look proves little."""
    if not page.get_by_text(LAST_OVERVIEW_ELEMENT).count():
        return False
    for _ in range(4):
        if not app_idle(page):
            return False
        page.wait_for_timeout(500)
    return True


LAST_OVERVIEW_ELEMENT = "Show every stream at every vantage point"


def test_clicking_a_service_in_the_flow_graph_filters_every_page(demo, page, screenshots):
    url, _, _ = demo

    def drawn_with_payments() -> bool:  # paused, so the graph holds still for the click; reload until it is there
        open_page(page, url, "?window=all&paused=1", "Overview")
        nodes = page.locator('[data-testid="stPlotlyChart"] g.textpoint text')
        nodes.first.wait_for(timeout=WAIT_S * 1000)
        return "payments" in nodes.all_text_contents()

    poll(drawn_with_payments, WAIT_S, "the payments service in the flow graph", interval=2)
    # the click reruns the app twice (the selection, then the filter written to the URL): slow under load
    poll(lambda: filtered_by_a_click(page, "payments"), WAIT_S * 2, "the service filter in the URL after a click", 2)
    poll(lambda: page.get_by_text("service = payments").count(), WAIT_S, "the Overview saying it shows payments only")
    full_screenshot(page, screenshots / "overview-after-a-click.png")
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Latency", exact=True).click()
    page.get_by_role("heading", name="Latency", exact=True).first.wait_for(timeout=WAIT_S * 1000)
    poll(lambda: "service=payments" in page.url, WAIT_S, "the service filter carried to the Latency page")
    service = page.locator('[data-testid="stSelectbox"]', has_text="Service")
    # the sidebar's choice, not only the URL
    poll(lambda: service.locator("input").first.input_value() == "payments", WAIT_S, "payments in the sidebar")
    full_screenshot(page, screenshots / "latency-filtered-by-a-click.png")


def test_ctrl_c_stops_everything(demo):
    _, listen_port, process = demo
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does in a terminal
    process.wait(timeout=WAIT_S)  # ./run stops its children one by one, each given up to 15 s
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and port_open(listen_port):
        time.sleep(0.2)
    assert not port_open(listen_port), "the collectors kept running after Ctrl-C"
