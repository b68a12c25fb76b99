"""The planted faults of real client apps (Celery on Redis, pika 0.66 on RabbitMQ) on the dashboard's pages.

Both apps export into one collectors process; the dashboard reads it, and each page is opened filtered to
one app's consumer and channel (URL query parameters), in headless Chromium. Every number checked is the
app's ground truth (tests/clients/*/app.py), not a figure read back from the API.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from urllib.parse import urlencode

import pytest

from tests import client_apps
from tests.e2e.conftest import full_screenshot
from tests.e2e.test_demo_browser import open_page, shows
from tests.processes import ROOT, free_port, running_collectors, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def client_dashboard(redis_server, rabbitmq):
    with running_collectors() as collectors:
        otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": collectors.api}
        truths = {
            "celery": client_apps.python_app("celery", "celery/app.py", {"REDIS_URL": redis_server.url, **otlp}).truth,
            "rabbitmq": client_apps.python_app("pika-0.66", "pika/app.py", {"AMQP_URL": rabbitmq.url, **otlp}).truth,
        }
        port = free_port()
        dashboard = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.port", str(port)]
            + ["--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT,
            env={**os.environ, "EVENTSCOPE_API": collectors.api},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            health = f"http://127.0.0.1:{port}/_stcore/health"
            wait_until(lambda: urllib.request.urlopen(health, timeout=2).status == 200, timeout=90, what="dashboard")
            yield f"http://127.0.0.1:{port}", truths
        finally:
            dashboard.terminate()
            dashboard.wait(timeout=30)


def scoped(path: str, truth: dict) -> str:
    return f"{path}?{urlencode({'group': truth['consumer_service'], 'channel': truth['channel']})}"


@pytest.mark.parametrize("app", ["celery", "rabbitmq"])
def test_planted_faults_show_on_the_pages(client_dashboard, page, screenshots, app):
    url, truths = client_dashboard
    truth = truths[app]
    open_page(page, url, scoped("", truth), "Overview")
    shows(page, "Deliveries", truth["deliveries"])
    shows(page, "Duplicates", sum(truth["duplicates"].values()))
    full_screenshot(page, screenshots / f"client-{app}-overview.png")
    open_page(page, url, scoped("duplicates", truth), "Duplicates")
    # "Duplicated events" counts the events seen more than once, redelivered ones included
    shows(page, "Duplicated events", len(set(truth["duplicates"]) | set(truth["redeliveries"])))
    shows(page, "Processed twice (bug)", sum(truth["duplicates"].values()))
    shows(page, "Redelivered (not duplicates)", sum(truth["redeliveries"].values()))
    full_screenshot(page, screenshots / f"client-{app}-duplicates.png")
    open_page(page, url, scoped("dead-letters", truth), "Dead letters")
    shows(page, "Retried deliveries", sum(truth["redeliveries"].values()))  # one per redelivery
    full_screenshot(page, screenshots / f"client-{app}-retries.png")
    open_page(page, url, scoped("ordering", truth), "Ordering and loss")
    shows(page, "Lost in processing", len(truth["failed"]))
    full_screenshot(page, screenshots / f"client-{app}-ordering.png")
