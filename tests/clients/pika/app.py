"""A RabbitMQ app on pika, traced by opentelemetry-instrumentation-pika (run with 0.44 and with 0.66).

``PikaInstrumentor().instrument()``, as its README shows, in two processes: the service
``pika-publisher`` publishes 12 messages (message ids m-1..m-12) to the queue ``mail``
and m-5 a second time (a duplicate publish). The service ``pika-consumer`` consumes ``mail``: it
nacks m-3 with requeue the first time (RabbitMQ redelivers it), and its handler raises on m-8, which
is then rejected without requeue and dead-lettered to ``mail.dead`` (the queue's dead-letter
exchange), where the same service consumes it (in a child process). Ground truth goes to
$EVENTSCOPE_TRUTH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pika  # noqa: E402
from opentelemetry.instrumentation.pika import PikaInstrumentor  # noqa: E402
from telemetry import provider, rabbitmq_truth, write_truth  # noqa: E402

QUEUE, DEAD = "mail", "mail.dead"
MESSAGES = [f"m-{n}" for n in range(1, 13)]
DUPLICATE, NACKED, FAILING = "m-5", "m-3", "m-8"


class HandlerError(Exception):
    def __init__(self, delivery_tag: int):
        super().__init__(f"cannot render the mail (delivery {delivery_tag})")
        self.delivery_tag = delivery_tag


def connect(service: str):
    tracer_provider = provider(service)
    PikaInstrumentor().instrument(tracer_provider=tracer_provider)
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    return connection, connection.channel(), tracer_provider


def consume(report_path: str) -> None:
    """The ``pika-consumer`` service: consumes until every message is handled or dead-lettered."""
    connection, consumer, tracer_provider = connect("pika-consumer")
    handled: list[str] = []
    dead: list[str] = []

    def on_mail(ch, method, properties, body) -> None:
        message_id = properties.message_id
        if message_id == NACKED and not method.redelivered:
            ch.basic_nack(method.delivery_tag, requeue=True)
            return
        if message_id == FAILING:
            raise HandlerError(method.delivery_tag)
        handled.append(message_id)
        ch.basic_ack(method.delivery_tag)

    def on_dead(ch, method, properties, body) -> None:
        dead.append(properties.message_id)
        ch.basic_ack(method.delivery_tag)

    consumer.basic_qos(prefetch_count=1)
    consumer.basic_consume(QUEUE, on_mail)
    consumer.basic_consume(DEAD, on_dead)
    deadline = time.monotonic() + 30
    while len(handled) < len(MESSAGES) or not dead:  # all but the failing one, and the duplicate again
        if time.monotonic() > deadline:
            raise SystemExit(f"handled {handled}, dead-lettered {dead}")
        try:
            connection.process_data_events(time_limit=0.1)
        except HandlerError as failure:
            consumer.basic_reject(failure.delivery_tag, requeue=False)
    connection.close()
    tracer_provider.shutdown()
    with open(report_path, "w") as out:
        json.dump({"handled": handled, "dead": dead}, out)


def main() -> None:
    connection, publisher, tracer_provider = connect("pika-publisher")
    publisher.queue_declare(DEAD)
    publisher.queue_declare(QUEUE, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": DEAD})
    report_path = os.environ["EVENTSCOPE_TRUTH"] + ".consumer"
    consumer = subprocess.Popen([sys.executable, os.path.abspath(__file__), "consume", report_path])
    for message_id in [*MESSAGES[:5], DUPLICATE, *MESSAGES[5:]]:
        properties = pika.BasicProperties(message_id=message_id, content_type="application/json")
        publisher.basic_publish("", QUEUE, f'{{"to": "{message_id}@example.org"}}'.encode(), properties)
    connection.close()
    tracer_provider.shutdown()
    if consumer.wait(timeout=60) != 0:
        raise SystemExit("the consumer failed")
    with open(report_path) as seen:
        consumed = json.load(seen)
    write_truth(rabbitmq_truth("pika", (QUEUE, DEAD), MESSAGES, (DUPLICATE, NACKED, FAILING), consumed))


if __name__ == "__main__":
    consume(sys.argv[2]) if sys.argv[1:2] == ["consume"] else main()
