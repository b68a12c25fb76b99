"""The planted faults of real client apps (Celery on Redis, pika 0.66 on RabbitMQ) on the dashboard's pages.

Both apps export into one collectors process; the dashboard reads it, and each page is opened filtered to
one app's consumer and channel (URL query parameters), in headless Chromium. Every number checked is the
app's ground truth (tests/clients/*/app.py), not a figure read back from the API.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from devtools.processes import running_dashboard
from tests import client_apps
from tests.e2e.conftest import full_screenshot
from tests.e2e.test_demo_browser import open_page, shows
from tests.processes import running_collectors

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def client_dashboard(redis_server, rabbitmq):
    with running_collectors() as collectors:
        otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": collectors.api}
        truths = {
            "celery": client_apps.python_app("celery", "celery/app.py", {"REDIS_URL": redis_server.url, **otlp}).truth,
            "rabbitmq": client_apps.python_app("pika-0.66", "pika/app.py", {"AMQP_URL": rabbitmq.url, **otlp}).truth,
        }
        with running_dashboard(collectors.api) as url:
            yield url, truths


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
