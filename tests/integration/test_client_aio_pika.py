"""aio-pika on a real RabbitMQ with opentelemetry-instrumentation-aio-pika, in its own virtualenv: the planted
duplicate publish, nack-and-requeue, failure and dead letter come out exactly on every analysis
(tests/clients/aio-pika/app.py)."""

from __future__ import annotations

import pytest

from tests import client_apps, ground_truth
from tests.processes import running_collectors

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def aio_pika_run(rabbitmq):
    with running_collectors() as collectors:
        env = {"AMQP_URL": rabbitmq.url, "OTEL_EXPORTER_OTLP_ENDPOINT": collectors.api}
        yield collectors, client_apps.python_app("aio-pika", "aio-pika/app.py", env).truth


def test_aio_pika_spans_arrive_as_the_instrumentation_wrote_them(aio_pika_run):
    collectors, truth = aio_pika_run
    spans = ground_truth.stored_spans(collectors)
    producers = [s for s in spans if s["kind"] == "Producer"]
    consumers = [s for s in spans if s["kind"] == "Consumer" and s["name"] == "orders receive"]
    assert (len(producers), len(consumers)) == (truth["publishes"], truth["deliveries"])
    # a publish to the default exchange names its destination "<exchange>,<routing key>"
    assert {(s["name"], s["attributes"]["messaging.destination"]) for s in producers} == {(",orders send", ",orders")}
    assert {s["attributes"]["messaging.destination"] for s in consumers} == {"orders"}
    assert ground_truth.attribute_names(spans, "Producer") == {
        "messaging.system",
        "messaging.destination",
        "messaging.temp_destination",
        "messaging.message.id",
        "net.peer.name",
        "net.peer.port",
    }
    assert ground_truth.attribute_names(spans, "Consumer") == {
        "messaging.system",
        "messaging.destination",
        "messaging.operation",
        "messaging.message.id",
        "net.peer.name",
        "net.peer.port",
    }
    ids = {s["span_id"]: s for s in spans}
    assert all(ids[s["parent_span_id"]]["kind"] == "Producer" for s in consumers)
    failed = {s["attributes"]["messaging.message.id"] for s in consumers if s["status"] == "Error"}
    assert failed == set(truth["failed"])


@pytest.mark.parametrize("endpoint", ground_truth.ENDPOINTS)
def test_aio_pika_planted_counts(aio_pika_run, endpoint):
    ground_truth.check(endpoint, *aio_pika_run)
