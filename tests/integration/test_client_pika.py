"""pika on a real RabbitMQ with opentelemetry-instrumentation-pika 0.44 and 0.66, each in its own virtualenv:
the planted duplicate publish, nack-and-requeue, failure and dead letter come out exactly on every analysis
(tests/clients/pika/app.py)."""

from __future__ import annotations

import pytest

from tests import client_apps, ground_truth
from tests.processes import running_collectors

pytestmark = pytest.mark.integration

PRODUCER_ATTRIBUTES = {
    "messaging.system",
    "messaging.destination",
    "messaging.temp_destination",
    "messaging.message.id",
    "net.peer.name",
    "net.peer.port",
}
CONSUMER_ATTRIBUTES = {
    "messaging.system",
    "messaging.destination",
    "messaging.operation",
    "messaging.message.id",
    "net.peer.name",
    "net.peer.port",
}


@pytest.fixture(scope="module", params=["pika-0.44", "pika-0.66"])
def pika_run(request, rabbitmq):
    with running_collectors() as collectors:
        env = {"AMQP_URL": rabbitmq.url, "OTEL_EXPORTER_OTLP_ENDPOINT": collectors.api}
        yield request.param, collectors, client_apps.python_app(request.param, "pika/app.py", env).truth


def test_pika_spans_arrive_as_the_instrumentation_wrote_them(pika_run):
    version, collectors, truth = pika_run
    spans = ground_truth.stored_spans(collectors)
    producers = [s for s in spans if s["kind"] == "Producer"]
    consumers = [s for s in spans if s["kind"] == "Consumer" and s["name"] == "mail receive"]
    dead = [s for s in spans if s["kind"] == "Consumer" and s["name"] == "mail.dead receive"]
    assert len(dead) == len(truth["dead_lettered"])
    assert ground_truth.attribute_names(spans, "Producer") == PRODUCER_ATTRIBUTES
    assert ground_truth.attribute_names(spans, "Consumer") == CONSUMER_ATTRIBUTES
    ids = {s["span_id"]: s for s in spans}
    if version == "pika-0.44":
        # every delivery on "mail" has two sibling CONSUMER spans; the destination is the consumer tag,
        # and a publish to the default exchange is "(temporary)"
        assert (len(producers), len(consumers)) == (truth["publishes"], 2 * truth["deliveries"])
        assert {s["attributes"]["messaging.destination"] for s in producers} == {"(temporary)"}
        assert all(s["attributes"]["messaging.destination"].startswith("ctag") for s in consumers)
    else:
        # every publish has two nested PRODUCER spans, the inner one the consumers' parent
        assert (len(producers), len(consumers)) == (2 * truth["publishes"], truth["deliveries"])
        inner = [s for s in producers if ids.get(s["parent_span_id"], {}).get("kind") == "Producer"]
        assert len(inner) == truth["publishes"]
        assert {s["attributes"]["messaging.destination"] for s in spans} == {"mail", "mail.dead"}
    assert all(ids[s["parent_span_id"]]["kind"] == "Producer" for s in consumers + dead)
    assert all(s["attributes"]["messaging.operation"] == "receive" for s in consumers)
    failed = {s["attributes"]["messaging.message.id"] for s in consumers if s["status"] == "Error"}
    assert failed == set(truth["failed"])


@pytest.mark.parametrize("endpoint", ground_truth.ENDPOINTS)
def test_pika_planted_counts(pika_run, endpoint):
    _, collectors, truth = pika_run
    ground_truth.check(endpoint, collectors, truth)
