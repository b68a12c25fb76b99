"""Celery 5 on a Redis broker with opentelemetry-instrumentation-celery, in its own virtualenv: the planted
duplicate publish, retries and failure come out exactly on every analysis (tests/clients/celery/app.py)."""

from __future__ import annotations

import pytest

from tests import client_apps, ground_truth
from tests.processes import running_collectors

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def celery_run(redis_server):
    with running_collectors() as collectors:  # no tap: Celery's own Pub/Sub (pidbox) is not under test
        env = {"REDIS_URL": redis_server.url, "OTEL_EXPORTER_OTLP_ENDPOINT": collectors.api}
        yield collectors, client_apps.python_app("celery", "celery/app.py", env).truth


def test_celery_spans_arrive_as_the_instrumentation_wrote_them(celery_run):
    collectors, truth = celery_run
    spans = ground_truth.stored_spans(collectors)
    producers = [s for s in spans if s["kind"] == "Producer"]
    consumers = [s for s in spans if s["kind"] == "Consumer"]
    retried = next(iter(truth["redeliveries"]))
    # the worker publishes a retry again itself: one more PRODUCER span per retry
    assert len(producers) == truth["publishes"] + truth["redeliveries"][retried]
    assert len(consumers) == truth["deliveries"]
    assert {s["name"].split("/")[0] for s in spans} == {"apply_async", "run"}
    for span in consumers:
        attributes = span["attributes"]
        assert attributes["messaging.destination"] == truth["channel"]
        assert attributes["celery.task_name"] in truth["deliveries_by_type"]
        assert attributes["messaging.message.id"] == attributes["messaging.conversation_id"]
    states = sorted(
        (s["attributes"]["celery.state"], s["status"])
        for s in consumers
        if s["attributes"]["messaging.message.id"] in (retried, *truth["failed"])
    )
    assert states == [("FAILURE", "Error"), ("RETRY", "Unset"), ("RETRY", "Unset"), ("SUCCESS", "Unset")]
    assert ground_truth.attribute_names(spans, "Producer") == {
        "celery.action",
        "celery.task_name",
        "messaging.destination",
        "messaging.destination_kind",
        "messaging.message.id",
    }


@pytest.mark.parametrize("endpoint", ground_truth.ENDPOINTS)
def test_celery_planted_counts(celery_run, endpoint):
    ground_truth.check(endpoint, *celery_run)
