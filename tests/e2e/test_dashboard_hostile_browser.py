"""Hostile links and hostile data in a real browser: what Chromium renders and what it fetches.

The dashboard runs as a user would start it by hand (``streamlit run dashboard/app.py`` from the
repository, no address given) against a collectors process holding names and ids made of Markdown and
HTML that point at a trap server. No page may fetch from the trap, link to it, show a traceback or
an exception; a crafted parameter gives a visible notice; the dashboard listens on loopback only.
"""

from __future__ import annotations

import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.processes import running_dashboard
from tests.integration.test_dashboard_hostile import hostile_values, publish_hostile, send_hostile_spans
from tests.processes import Collectors, free_port, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

WAIT_S = 180
"""Deadline of every wait: generous, since only a failure ever waits this long (the machine is shared)."""
INVALID = "is not valid"


class Trap(BaseHTTPRequestHandler):
    """Records every request: a hostile image or link the browser followed shows up here."""

    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        Trap.requests.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def trap():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Trap)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def dashboard(redis_server, trap):
    """Collectors holding hostile names, and the dashboard started by hand: (url, port, values, trace id)."""
    collectors = Collectors(redis_server.url)
    values = hostile_values(trap)
    publish_hostile(redis_server.client(), values)
    trace_id = send_hostile_spans(collectors.api, values)
    wait_until(lambda: collectors.get("health")["store"]["spans"] == 2, timeout=WAIT_S, what="hostile spans stored")
    try:
        with running_dashboard(collectors.api, WAIT_S) as url:
            yield url, int(url.rsplit(":", 1)[1]), values, trace_id
    finally:
        collectors.stop()


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp* writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]  # noqa: SIM115 - a /proc file, read at once
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1


def test_the_dashboard_started_by_hand_listens_on_loopback_only(dashboard):
    _, port, _, _ = dashboard
    addresses = listening_addresses(port)
    assert addresses, f"nothing listens on {port}"
    assert addresses <= LOOPBACK, f"the dashboard listens beyond loopback: {addresses}"


def open_and_settle(page, url: str, title: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=WAIT_S * 1000)
    deadline = WAIT_S * 1000
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=deadline, polling=500
    )


LINKING_ATTRIBUTES = """() => [...document.querySelectorAll('*')].flatMap(element => [...element.attributes]
    .filter(a => /^(href|xlink:href|src|srcset|action|formaction|poster|data)$/i.test(a.name)).map(a => a.value))"""
"""Every attribute value that links or loads, read from the DOM: a hostile name shown as text (a chart label
with ``&lt;a href=...&gt;`` in it) is no link, and the serialised HTML cannot tell the two apart."""


def assert_nothing_from_data(page, trap: str) -> None:
    pointing = [value for value in page.evaluate(LINKING_ATTRIBUTES) if trap in value]
    assert not pointing, f"the page links to or loads from data: {pointing}"
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]')
    assert "Traceback" not in page.inner_text("body")
    assert not Trap.requests, f"the browser fetched from the trap: {Trap.requests}"


def quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def hostile_links(values: dict[str, str], trace_id: str) -> list[tuple[str, str]]:
    """(path and query, page title) of links carrying hostile values, and pages showing hostile data."""
    return [
        (f"?window=all&channel={quoted(values['channel'])}", "Overview"),
        ("?window=all&paused=1", "Overview"),
        (f"traces?window=all&trace={trace_id}", "Traces"),
        (f"event?id={quoted(values['event_id'])}", "Event"),
        (f"event?id={quoted('![gone](TRAP/gone.png)')}", "Event"),
        (f"ordering?window=all&channel={quoted(values['channel'])}", "Ordering and loss"),
        ("duplicates?window=all", "Duplicates"),
        ("dead-letters?window=all", "Dead letters"),
        ("instrumentation?window=all", "Instrumentation health"),
        (f"latency?window=all&group={quoted(values['group'])}", "Latency"),
        (f"broker?window=all&service={quoted(values['service'])}", "Broker"),
    ]


@pytest.mark.parametrize("index", range(11))
def test_hostile_values_never_become_images_or_links(dashboard, page, trap, index):
    url, _, values, trace_id = dashboard
    path, title = hostile_links(values, trace_id)[index]
    Trap.requests.clear()
    open_and_settle(page, f"{url}/{path.replace('TRAP', quoted(trap))}", title)
    assert_nothing_from_data(page, trap)


CRAFTED = [
    ("traces?min_ms=abc", "Traces", "min_ms"),
    ("latency?by=bogus", "Latency", "by"),
    ("latency?p=p100", "Latency", "p"),
    ("latency?measure=%3Cimg%3E", "Latency", "measure"),
    ("traces?error=maybe&trace=nope", "Traces", "error"),
    ("?window=forever", "Overview", "window"),
    ("scenarios?scenario=none", "Scenarios", "scenario"),
]


@pytest.mark.parametrize(("path", "title", "key"), CRAFTED)
def test_a_crafted_link_shows_a_notice_never_a_traceback(dashboard, page, trap, path, title, key):
    url, _, _, _ = dashboard
    open_and_settle(page, f"{url}/{path}", title)
    notice = page.get_by_text(INVALID).first
    notice.wait_for(timeout=WAIT_S * 1000)
    assert key in notice.inner_text()
    assert_nothing_from_data(page, trap)


def test_the_scenarios_page_explains_how_to_enable_its_controls(dashboard, page, trap):
    url, _, _, _ = dashboard
    open_and_settle(page, f"{url}/scenarios", "Scenarios")
    page.get_by_text("Starting scenarios is off").first.wait_for(timeout=WAIT_S * 1000)
    assert page.get_by_role("button", name="Start scenario").count() == 0
