"""What every client app does the same way: an OpenTelemetry SDK exporting over OTLP, and its ground truth.

Apps run in their own virtualenvs, so this imports only the SDK and the exporter, both present in
every one of them. The endpoint comes from OTEL_EXPORTER_OTLP_ENDPOINT, as for any user's app.
"""

from __future__ import annotations

import json
import os

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def provider(service: str) -> TracerProvider:
    """A tracer provider for one service; the exporter reads OTEL_EXPORTER_OTLP_ENDPOINT."""
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": service}))
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return tracer_provider


def write_truth(truth: dict) -> None:
    """What the app planted, for the tests to score the collectors against."""
    with open(os.environ["EVENTSCOPE_TRUTH"], "w") as out:
        json.dump(truth, out, indent=2, sort_keys=True)


def rabbitmq_truth(
    app: str, queues: tuple[str, str], messages: list[str], planted: tuple[str, str, str], consumed: dict
):
    """The ground truth of a RabbitMQ app (pika, aio-pika): every message published once, one (``planted[0]``)
    twice, one nacked with requeue then acked (``planted[1]``), one failing into the dead-letter queue
    (``planted[2]``). ``consumed`` is what the consumer reported it handled and dead-lettered."""
    (queue, dead), (duplicate, nacked, failing) = queues, planted
    return {
        "system": "rabbitmq",
        "channel": queue,
        "producer_service": f"{app}-publisher",
        "consumer_service": f"{app}-consumer",
        "publishes": len(messages) + 1,
        "messages": len(messages),
        "deliveries": len(consumed["handled"]) + 2,  # and the nacked first delivery, and the failed one
        "duplicates": {duplicate: 1},
        "redeliveries": {nacked: 1},
        "failed": [failing],
        "dead_lettered": consumed["dead"],
        "dead_letter_channel": dead,
        "lost": [],
    }
