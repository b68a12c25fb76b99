"""``./run demo`` in the background; headless Chromium opens the dashboard and finds live numbers."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from tests.processes import ROOT, free_port

pytestmark = pytest.mark.browser

URL_LINE = re.compile(r"eventscope dashboard: (http://\S+)")


@pytest.fixture
def demo():
    listen_port, dashboard_port = free_port(), free_port()
    env = {
        **os.environ,
        "EVENTSCOPE_LISTEN": f"127.0.0.1:{listen_port}",
        "EVENTSCOPE_DASHBOARD_PORT": str(dashboard_port),
        "EVENTSCOPE_STORE": os.path.join(tempfile.mkdtemp(prefix="eventscope-demo-"), "demo.duckdb"),
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


def metric_value(page, label: str) -> int:
    metric = page.locator('[data-testid="stMetric"]', has_text=label).first
    return int(metric.locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))


def test_dashboard_shows_live_numbers_and_ctrl_c_stops_everything(demo, page, screenshots):
    url, listen_port, process = demo
    page.goto(url)
    page.get_by_role("heading", name="Overview").wait_for(timeout=60_000)
    first = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            first = metric_value(page, "Bus messages")
        except (ValueError, Exception):
            first = None
        if first:
            break
        time.sleep(0.5)
    assert first and first > 0, "the Overview never showed bus messages"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and metric_value(page, "Bus messages") <= first:
        time.sleep(0.5)
    assert metric_value(page, "Bus messages") > first, "the numbers did not refresh on their own"
    assert metric_value(page, "Deliveries") > 0
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(screenshots / "overview.png"), full_page=True)

    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does in a terminal
    process.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and port_open(listen_port):
        time.sleep(0.2)
    assert not port_open(listen_port), "the collectors kept running after Ctrl-C"
