"""redis-py Pub/Sub with opentelemetry-instrumentation-redis, in its own virtualenv, against a real redis-server
tapped by the collectors (tests/clients/redis/app.py): the instrumentation traces PUBLISH as a database call with
its arguments masked, so the spans name no channel, carry no context and show no consumer. The tap still counts
every message, and Instrumentation health counts the PUBLISH commands and says what they cannot show and how to
see it."""

from __future__ import annotations

import pytest

from tests import client_apps, ground_truth
from tests.processes import running_collectors, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_run(redis_server):
    with running_collectors(redis_server.url) as collectors:
        env = {"REDIS_URL": redis_server.url, "OTEL_EXPORTER_OTLP_ENDPOINT": collectors.api}
        truth = client_apps.python_app("redis", "redis/app.py", env).truth
        wait_until(lambda: collectors.get("overview")["messages"] == truth["publishes"], what="messages tapped")
        yield collectors, truth


def test_publish_is_a_masked_database_call(redis_run):
    collectors, truth = redis_run
    spans = ground_truth.stored_spans(collectors)
    publishes = [s for s in spans if s["name"] == "PUBLISH"]
    pipelines = [s for s in spans if s["name"] == "PUBLISH PUBLISH"]
    assert (len(publishes), len(pipelines)) == (truth["publish_spans"], truth["pipelines"])
    assert {s["kind"] for s in publishes + pipelines} == {"Client"}
    assert {s["attributes"]["db.statement"] for s in publishes} == {"PUBLISH ? ?"}
    assert pipelines[0]["attributes"]["db.statement"] == "PUBLISH ? ?\nPUBLISH ? ?"
    assert all(s["attributes"]["db.system"] == "redis" for s in publishes + pipelines)
    assert set(publishes[0]["attributes"]) == {
        "db.system",
        "db.statement",
        "db.redis.args_length",
        "db.redis.database_index",
        "net.peer.name",
        "net.peer.port",
        "net.transport",
    }
    # nothing names the channel, and nothing is traced where the subscriber receives
    assert not [s for s in spans if truth["channel"] in str(s["attributes"]) or s["kind"] != "Client"]


def test_the_tap_counts_every_message_and_no_span_claims_a_channel(redis_run):
    collectors, truth = redis_run
    overview = collectors.get("overview")
    assert (overview["messages"], overview["unenveloped"], overview["deliveries"]) == (truth["publishes"],) * 2 + (0,)
    flow = collectors.get("flow")
    assert {n["id"]: n.get("messages") for n in flow["nodes"] if n["kind"] == "channel"} == {
        f"channel:{truth['channel']}": truth["publishes"]
    }
    assert flow["edges"] == []


def test_instrumentation_health_counts_the_publishes_and_says_how_to_see_them(redis_run):
    collectors, truth = redis_run
    blind = {b["kind"]: b for b in collectors.get("instrumentation")["blind_spots"]}
    as_db = blind["pubsub_as_db_call"]
    assert (as_db["count"], as_db["where"]) == (truth["publishes"], [truth["service"]])
    assert {"the channel", "the context", "the subscribers"} <= set(as_db["cannot_see"])
    assert "pip install ./instrumentation/eventscope-redis" in as_db["how"]
    assert blind["unenveloped"]["count"] == truth["publishes"]
