"""The Contracts page in a real browser: the breaches planted by eventscope-redis apps through a real Redis and a
real collectors process are read off the page's findings table, one row each."""

from __future__ import annotations

import pytest

from devtools.processes import running_dashboard
from tests.e2e.conftest import full_screenshot
from tests.e2e.test_demo_browser import open_page, shows
from tests.e2e.test_health_pages_browser import table_rows
from tests.integration.test_contracts import PLANTED_GROUP, App, observed_all, plant, planted_registry
from tests.processes import Collectors, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

WAIT_S = 120


@pytest.fixture(scope="module")
def dashboard(redis_server, tmp_path_factory):
    registry = planted_registry(tmp_path_factory.mktemp("contracts"))
    collectors = Collectors(redis_server.url, extra_env={"EVENTSCOPE_REGISTRY": str(registry)})
    producer = App(redis_server.url, collectors.api, "planter")
    consumer = App(redis_server.url, collectors.api, PLANTED_GROUP, consumer_group=PLANTED_GROUP)
    received: list = []
    pubsub = consumer.client.pubsub()
    pubsub.subscribe(**{"test.orders": received.append})
    worker = pubsub.run_in_thread(sleep_time=0.02, daemon=True)
    try:
        wait_until(lambda: redis_server.client().pubsub_numsub("test.orders")[0][1] == 1, what="audit subscribed")
        plant(producer, received)
        wait_until(lambda: observed_all(collectors), WAIT_S, what="every publication and delivery stored")
        with running_dashboard(collectors.api, WAIT_S) as url:
            yield url
    finally:
        worker.stop()
        producer.close()
        consumer.close()
        collectors.stop()


def test_the_contracts_page_lists_each_planted_breach_once(dashboard, page, screenshots):
    open_page(page, dashboard, "contracts?window=all", "Contracts")
    shows(page, "Findings", 3, WAIT_S)
    rows = table_rows(page, "finding")
    assert [(row[0], row[2], row[4]) for row in rows] == [
        ("Unknown type", "shop.mystery.happened", "planter"),
        ("Schema violation", "shop.order.shipped", "planter"),
        ("Not accepted", "shop.order.placed", PLANTED_GROUP),
    ]
    exchanges = table_rows(page, "who")
    assert [PLANTED_GROUP, "receives", "test.orders", "shop.order.placed", "1", "1", "accepts only 2"] in exchanges
    full_screenshot(page, screenshots / "contracts.png")
