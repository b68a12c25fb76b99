"""A redelivery is not a duplicate: a Celery-like retry and a RabbitMQ-like requeue, through the real OTLP exporter.

The spans are shaped exactly as the instrumentations emit them (names, kinds, parents, scope, attributes),
read from opentelemetry-python-contrib 0.66:
- Celery: instrumentation/opentelemetry-instrumentation-celery/src/opentelemetry/instrumentation/celery/__init__.py
  (``_trace_before_publish``: PRODUCER ``apply_async/<task>``; ``_trace_prerun``/``_trace_postrun``: CONSUMER
  ``run/<task>``, child of the publish) and .../celery/utils.py (``set_attributes_from_context``:
  ``messaging.message.id`` = task id, ``messaging.destination`` = the routing key, ``celery.state``,
  ``celery.retries`` left out when 0, ``celery.delivery_info`` as str() of kombu's dict). A retried task
  re-publishes itself under the same id from inside its run span.
- pika 0.66: instrumentation/opentelemetry-instrumentation-pika/src/opentelemetry/instrumentation/pika/utils.py
  (``_get_span``/``_enrich_span``: ``<exchange or routing key> send`` PRODUCER with ``messaging.temp_destination``,
  ``<...> receive`` CONSUMER with ``messaging.operation`` = receive, ``messaging.destination``,
  ``messaging.message.id`` from the properties; tracer schema_url 1.11.0), with the two nested PRODUCER spans
  0.66 writes for one BlockingChannel publish. A callback that raises ends its span in ERROR; the message is
  nacked and requeued, and the next delivery carries the same message id.
No bus tap: only what the instrumentations say.
"""

from __future__ import annotations

import time

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.processes import Collectors, wait_until

pytestmark = pytest.mark.integration

MS = 1_000_000
CELERY_SCOPE = ("opentelemetry.instrumentation.celery", "0.66b0", None)
PIKA_SCOPE = ("opentelemetry.instrumentation.pika", "0.66b0", "https://opentelemetry.io/schemas/1.11.0")


@pytest.fixture
def api_only():
    process = Collectors(redis_url=None)
    yield process
    process.stop()


class Exporter:
    """One TracerProvider with a BatchSpanProcessor and the OTLP/HTTP exporter per service, as an app has."""

    def __init__(self, api: str):
        self.api = api
        self.providers: dict[str, TracerProvider] = {}
        self.sent = 0
        self.base = time.time_ns() - 60_000 * MS

    def span(self, service, scope, name, kind, at_ms, attributes, parent=None, error=None, length_ms=2.0):
        if service not in self.providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{self.api}/v1/traces")))
            self.providers[service] = provider
        tracer = self.providers[service].get_tracer(scope[0], scope[1], schema_url=scope[2])
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent else None
        span = tracer.start_span(
            name, context=context, kind=kind, attributes=attributes, start_time=self.base + int(at_ms * MS)
        )
        if error:
            span.record_exception(RuntimeError(error))
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=self.base + int((at_ms + length_ms) * MS))
        self.sent += 1
        return span.get_span_context()

    def flush(self, collectors) -> None:
        for provider in self.providers.values():
            provider.force_flush()
            provider.shutdown()
        wait_until(lambda: collectors.get("health")["store"]["spans"] == self.sent, what="spans stored")


def _delivery_info(redelivered: bool = False) -> str:
    return str({"exchange": "", "routing_key": "celery", "priority": 0, "redelivered": redelivered})


def celery_publish(spans: Exporter, service: str, task_id: str, at_ms: float, parent=None):
    attributes = {"celery.action": "apply_async", "messaging.message.id": task_id, "celery.task_name": "shop.charge",
                  "messaging.destination": "celery"}  # fmt: skip
    return spans.span(service, CELERY_SCOPE, "apply_async/shop.charge", SpanKind.PRODUCER, at_ms, attributes, parent)


def celery_run(spans: Exporter, task_id: str, at_ms: float, parent, state: str, retries: int = 0):
    attributes = {"celery.action": "run", "celery.delivery_info": _delivery_info(), "messaging.destination": "celery",
                  "celery.hostname": "celery@worker-1", "messaging.message.id": task_id, "celery.state": state,
                  "celery.task_name": "shop.charge"}  # fmt: skip
    if retries:
        attributes["celery.retries"] = retries
    if state == "RETRY":
        attributes["celery.retry.reason"] = "Retry in 1s: ConnectionError('card service down')"
    error = "card declined" if state == "FAILURE" else None
    return spans.span("worker", CELERY_SCOPE, "run/shop.charge", SpanKind.CONSUMER, at_ms, attributes, parent, error)


def test_a_celery_retry_is_a_redelivery_and_a_task_run_twice_is_a_duplicate(api_only):
    spans = Exporter(api_only.api)
    ok = celery_publish(spans, "web", "task-ok", 0)
    celery_run(spans, "task-ok", 5, ok, "SUCCESS")
    first = celery_publish(spans, "web", "task-retry", 10)
    run = celery_run(spans, "task-retry", 15, first, "RETRY")
    again = celery_publish(spans, "worker", "task-retry", 16, parent=run)  # Task.retry re-sends the same id
    celery_run(spans, "task-retry", 1020, again, "SUCCESS", retries=1)
    for at in (30, 31):  # the web app sent the same task id twice: both copies ran
        celery_run(spans, "task-dup", at + 5, celery_publish(spans, "web", "task-dup", at), "SUCCESS")
    spans.flush(api_only)

    (stream,) = api_only.get("report")["streams"]
    assert (stream["vantage"], stream["channel"]) == ("worker", "celery")
    assert (stream["received"], stream["duplicates"], stream["redeliveries"]) == (5, 1, 1)
    assert stream["duplicates_processed"] == 1  # task-dup, not task-retry

    found = {d["event_id"]: d for d in api_only.get("duplicates")["duplicates"]}
    assert (found["task-retry"]["redeliveries"], found["task-retry"]["processed"]) == (1, 0)
    assert (found["task-dup"]["redeliveries"], found["task-dup"]["processed"]) == (0, 1)

    retries = api_only.get("retries")
    assert retries["count"] == 1 and retries["outcomes"] == {"processed": 1}
    (entry,) = retries["retried"]
    assert (entry["event_id"], entry["kind"], entry["attempts"], entry["failed_attempts"]) == (
        "task-retry",
        "redelivery",
        2,
        1,
    )

    life = api_only.get("events/task-retry")
    assert [(d["outcome"], d["redelivery"]) for d in life["deliveries"]] == [("retried", False), ("processed", True)]
    assert "worker: retried, processed (redelivered after a failed attempt)." in life["verdict"]
    assert "duplicate got through" not in life["verdict"]
    assert "duplicate got through" in api_only.get("events/task-dup")["verdict"]

    overview = api_only.get("overview")
    assert (overview["duplicates"], overview["redeliveries"], overview["duplicates_processed"]) == (1, 1, 1)
    latency = api_only.get("latency?by=type")
    assert {s["key"] for s in latency["summary"]} == {"shop.charge"}  # the task name is the event type
    publish = {e["source"]: e["count"] for e in api_only.get("flow")["edges"] if e["kind"] == "publish"}
    assert publish == {"service:web": 4, "service:worker": 1}  # the retry is the worker sending the task again


def pika_publish(spans: Exporter, message_id: str, at_ms: float):
    """pika 0.66: the BlockingChannel's basic_publish and the channel's own each start a PRODUCER span."""
    attributes = {"messaging.system": "rabbitmq", "messaging.temp_destination": True, "messaging.destination": "orders",
                  "messaging.message.id": message_id, "net.peer.name": "127.0.0.1", "net.peer.port": 5672}  # fmt: skip
    outer = spans.span("shop", PIKA_SCOPE, "orders send", SpanKind.PRODUCER, at_ms, attributes, length_ms=3)
    return spans.span("shop", PIKA_SCOPE, "orders send", SpanKind.PRODUCER, at_ms + 0.5, attributes, outer, length_ms=1)


def pika_receive(spans: Exporter, message_id: str, at_ms: float, producer, error: str | None = None) -> None:
    attributes = {"messaging.system": "rabbitmq", "messaging.operation": "receive", "messaging.destination": "orders",
                  "messaging.message.id": message_id, "net.peer.name": "127.0.0.1", "net.peer.port": 5672}  # fmt: skip
    spans.span("mailer", PIKA_SCOPE, "orders receive", SpanKind.CONSUMER, at_ms, attributes, producer, error)


def test_a_rabbitmq_requeue_after_a_failed_delivery_is_a_redelivery_and_one_publish_is_one(api_only):
    spans = Exporter(api_only.api)
    a = pika_publish(spans, "m-a", 0)
    pika_receive(spans, "m-a", 5, a)
    b = pika_publish(spans, "m-b", 10)
    pika_receive(spans, "m-b", 15, b, error="smtp timeout")  # the callback raised: nack, requeue
    pika_receive(spans, "m-b", 25, b)
    c = pika_publish(spans, "m-c", 30)
    c_again = pika_publish(spans, "m-c", 31)  # the app published the same message twice
    pika_receive(spans, "m-c", 35, c)
    pika_receive(spans, "m-c", 36, c_again)
    spans.flush(api_only)

    (stream,) = api_only.get("report")["streams"]
    assert (stream["vantage"], stream["channel"], stream["received"]) == ("mailer", "orders", 5)
    assert (stream["duplicates"], stream["redeliveries"], stream["duplicates_processed"]) == (1, 1, 1)
    (entry,) = api_only.get("retries")["retried"]
    assert (entry["event_id"], entry["kind"], entry["outcome"]) == ("m-b", "redelivery", "processed")
    life = api_only.get("events/m-b")
    assert len(life["published"]) == 1  # two PRODUCER spans, one publish
    assert [(d["outcome"], d["redelivery"]) for d in life["deliveries"]] == [("failed", False), ("processed", True)]
    assert "mailer: failed, processed (redelivered after a failed attempt)." in life["verdict"]

    edges = {(e["source"], e["target"], e["kind"]): e for e in api_only.get("flow")["edges"]}
    assert edges[("service:shop", "channel:orders", "publish")]["count"] == 4  # not 8
    deliver = edges[("channel:orders", "service:mailer", "deliver")]
    assert (deliver["count"], deliver["errors"], deliver["duplicates"]) == (5, 1, 1)
    latency = api_only.get("latency")
    (delivery,) = [s for s in latency["summary"] if s["measure"] == "delivery"]
    assert delivery["count"] == 5 and delivery["p50_ms"] == pytest.approx(4.5)  # from the inner span: m-a 4.5 ms
