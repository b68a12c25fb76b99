"""The Node.js OpenTelemetry SDK exporting over OTLP/HTTP protobuf, OTLP/HTTP JSON and gRPC (npm packages
pinned in tests/clients/node/package-lock.json): the planted loss, duplicate, redelivery after a failed attempt
and failure come out exactly on every analysis (tests/clients/node/app.js)."""

from __future__ import annotations

import pytest

from tests import client_apps, ground_truth
from tests.processes import free_port, running_collectors

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["http/protobuf", "http/json", "grpc"])
def node_run(request):
    grpc_port = free_port()
    with running_collectors(extra_env={"EVENTSCOPE_GRPC_LISTEN": f"127.0.0.1:{grpc_port}"}) as collectors:
        endpoint = f"http://127.0.0.1:{grpc_port}" if request.param == "grpc" else collectors.api
        yield collectors, client_apps.node_app({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, request.param).truth


def test_node_spans_arrive_over_each_protocol(node_run):
    collectors, truth = node_run
    assert truth["export_errors"] == []
    health = collectors.get("health")
    assert (health["store"]["spans"], health["ingest"]["refused"]) == (truth["spans"], 0), health
    spans = ground_truth.stored_spans(collectors)
    consumers = [s for s in spans if s["kind"] == "Consumer"]
    assert len(consumers) == truth["deliveries"]
    assert {s["attributes"]["eventscope.sequence"] for s in consumers} == set(range(1, 21)) - {7}
    assert all(len(s["links"]) == 1 for s in consumers)


@pytest.mark.parametrize("endpoint", ground_truth.ENDPOINTS)
def test_node_planted_counts(node_run, endpoint):
    ground_truth.check(endpoint, *node_run)
