"""boto3 SQS and SNS with opentelemetry-instrumentation-botocore against moto in server mode, in its own
virtualenv: the planted redeliveries (visibility timeout) and dead letter come out exactly on every analysis, and
the SNS topic feeds its SQS subscription's deliveries; a duplicate send and a failing handler leave no trace in these
spans, and of a batch only its first message is seen, which Instrumentation health says
(tests/clients/botocore/app.py)."""

from __future__ import annotations

import pytest

from tests import client_apps, ground_truth
from tests.processes import running_collectors

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def botocore_run(moto_server):
    with running_collectors() as collectors:
        env = {
            "MOTO_URL": moto_server.url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collectors.api,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        yield collectors, client_apps.python_app("botocore", "botocore/app.py", env).truth


def _calls(spans: list[dict], method: str, queue: str | None = None) -> list[dict]:
    return [
        s
        for s in spans
        if s["attributes"].get("rpc.method") == method
        and (queue is None or s["attributes"].get("messaging.destination") == queue)
    ]


def test_botocore_spans_arrive_as_the_instrumentation_wrote_them(botocore_run):
    collectors, truth = botocore_run
    spans = ground_truth.stored_spans(collectors)
    sends = _calls(spans, "SendMessage", truth["channel"])
    receipts = [
        s for s in _calls(spans, "ReceiveMessage", truth["channel"]) if "messaging.message.id" in s["attributes"]
    ]
    # SQS calls are CLIENT spans: no PRODUCER or CONSUMER kind, no context carried in the message
    assert {s["kind"] for s in sends + receipts} == {"Client"}
    assert (len(sends), len(receipts)) == (truth["publishes"], truth["deliveries"])
    assert all(s["attributes"]["messaging.system"] == "aws.sqs" for s in sends + receipts)
    assert not any(s["links"] for s in receipts) and not any(s["parent_span_id"] for s in receipts)
    assert set(sends[0]["attributes"]) >= {
        "messaging.system",
        "messaging.destination",
        "messaging.url",
        "messaging.message.id",
        "aws.queue_url",
        "rpc.system",
        "rpc.service",
        "rpc.method",
    }
    # no receive count, no failure: the redelivery is only the same MessageId received again
    assert not any(s["status"] == "Error" for s in spans)
    assert not [name for s in receipts for name in s["attributes"] if "receive_count" in name.lower()]
    publishes = [s for s in spans if s["kind"] == "Producer"]
    assert len(publishes) == truth["sns"]["publishes"]
    assert {s["name"] for s in publishes} == {f"{truth['sns']['topic']} send"}
    assert all(s["attributes"]["messaging.destination.name"].endswith(f":{truth['sns']['topic']}") for s in publishes)
    audit = [
        s for s in _calls(spans, "ReceiveMessage", truth["sns"]["queue"]) if "messaging.message.id" in s["attributes"]
    ]
    assert len(audit) == truth["sns"]["deliveries"]


BATCH = (
    "botocore names only the first message of a SendMessageBatch and of a ReceiveMessage (messaging.message.id) "
    "and not how many a call carried: each call is one publish or one delivery, the rest of a batch is unseen"
)
# What the collectors cannot read exactly; each an expected failure (docs/compatibility.md). The batch cannot be
# read from these spans at all: Instrumentation health says so (test_botocore_batches_are_named_a_blind_spot).
GAPS = {("batch",): BATCH}


@pytest.mark.parametrize("endpoint", ground_truth.ENDPOINTS)
def test_botocore_sqs_planted_counts(botocore_run, endpoint, request):
    ground_truth.expect_gap(request, GAPS, endpoint)
    ground_truth.check(endpoint, *botocore_run)


def test_botocore_sns_publishes_and_deliveries_are_in_the_flow(botocore_run, request):
    ground_truth.expect_gap(request, GAPS, "sns")
    collectors, truth = botocore_run
    edges = {(e["source"], e["target"], e["kind"]): e["count"] for e in collectors.get("flow")["edges"]}
    topic = truth["sns"]["topic"]
    published = {
        count for (source, target, kind), count in edges.items() if kind == "publish" and target.endswith(topic)
    }
    assert published == {truth["sns"]["publishes"]}, edges
    assert (
        edges.get((f"channel:{truth['sns']['queue']}", "service:sqs-consumer", "deliver")) == truth["sns"]["deliveries"]
    )


def test_botocore_redelivered_message_reads_as_a_redelivery_on_its_event_page(botocore_run):
    collectors, truth = botocore_run
    for message_id, again in truth["redeliveries"].items():
        life = collectors.get(f"events/{message_id}")
        on_queue = [d for d in life["deliveries"] if d["group"] == truth["consumer_service"]]
        assert [d["redelivery"] for d in on_queue][: again + 1] == [False] + [True] * again, life
        assert {d["outcome"] for d in on_queue} == {"received"}, life
        assert "(redelivered after a failed attempt)" in life["verdict"]
        assert "processed more than once" not in life["verdict"]
        assert life["published"][0]["service"] == truth["producer_service"]


def _batch_edges(collectors, truth: dict) -> dict[str, int | None]:
    edges = {(e["source"], e["target"], e["kind"]): e["count"] for e in collectors.get("flow")["edges"]}
    channel = f"channel:{truth['batch']['queue']}"
    return {
        "publish": edges.get((f"service:{truth['producer_service']}", channel, "publish")),
        "deliver": edges.get((channel, f"service:{truth['consumer_service']}", "deliver")),
    }


def test_botocore_batches_count_every_message(botocore_run, request):
    ground_truth.expect_gap(request, GAPS, "batch")
    collectors, truth = botocore_run
    messages = truth["batch"]["messages"]
    assert _batch_edges(collectors, truth) == {"publish": messages, "deliver": messages}


def test_botocore_batches_are_named_a_blind_spot(botocore_run):
    """What the spans do show of a batch is one publish per call and one delivery per call, and the page says why."""
    collectors, truth = botocore_run
    batch = truth["batch"]
    assert _batch_edges(collectors, truth) == {"publish": batch["send_calls"], "deliver": batch["receive_calls"]}
    blind = {b["kind"]: b for b in collectors.get("instrumentation")["blind_spots"]}
    first_only = blind["first_message_only"]
    receipts = truth["deliveries"] + len(truth["dead_lettered"]) + truth["sns"]["deliveries"] + batch["receive_calls"]
    assert first_only["count"] == receipts + batch["send_calls"]
    assert first_only["where"] == sorted(
        {truth["channel"], truth["dead_letter_channel"], truth["sns"]["queue"], batch["queue"]}
    )
    assert "MaxNumberOfMessages=1" in first_only["how"]
