"""A RabbitMQ app on aio-pika, traced by opentelemetry-instrumentation-aio-pika.

``AioPikaInstrumentor().instrument()`` in two processes: the service ``aio-pika-publisher`` publishes
12 messages (message ids a-1..a-12) to the queue ``orders`` and a-5 a second time (a duplicate
publish); the service ``aio-pika-consumer`` (a child process) nacks a-3 with requeue the first time,
and its handler raises on a-8 inside ``message.process(requeue=False)``, which rejects it to the
dead-letter queue ``orders.dead``, consumed by the same service. Ground truth goes to $EVENTSCOPE_TRUTH.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import aio_pika  # noqa: E402
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor  # noqa: E402
from telemetry import provider, rabbitmq_truth, write_truth  # noqa: E402

QUEUE, DEAD = "orders", "orders.dead"
MESSAGES = [f"a-{n}" for n in range(1, 13)]
DUPLICATE, NACKED, FAILING = "a-5", "a-3", "a-8"


async def declare(channel) -> tuple:
    dead = await channel.declare_queue(DEAD)
    queue = await channel.declare_queue(
        QUEUE, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": DEAD}
    )
    return queue, dead


async def consume(report_path: str) -> None:
    """The ``aio-pika-consumer`` service: consumes until every message is handled or dead-lettered."""
    tracer_provider = provider("aio-pika-consumer")
    AioPikaInstrumentor().instrument(tracer_provider=tracer_provider)
    connection = await aio_pika.connect(os.environ["AMQP_URL"])
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=1)
    queue, dead_queue = await declare(channel)
    handled: list[str] = []
    dead: list[str] = []

    async def on_order(message) -> None:
        if message.message_id == NACKED and not message.redelivered:
            await message.nack(requeue=True)
            return
        async with message.process(requeue=False):
            if message.message_id == FAILING:
                raise ValueError(f"order {message.message_id}: no stock")
            handled.append(message.message_id)

    async def on_dead(message) -> None:
        async with message.process():
            dead.append(message.message_id)

    await queue.consume(on_order)
    await dead_queue.consume(on_dead)
    deadline = time.monotonic() + 30
    while len(handled) < len(MESSAGES) or not dead:  # all but the failing one, and the duplicate again
        if time.monotonic() > deadline:
            raise SystemExit(f"handled {handled}, dead-lettered {dead}")
        await asyncio.sleep(0.05)
    await connection.close()
    tracer_provider.shutdown()
    with open(report_path, "w") as out:
        json.dump({"handled": handled, "dead": dead}, out)


async def publish() -> None:
    tracer_provider = provider("aio-pika-publisher")
    AioPikaInstrumentor().instrument(tracer_provider=tracer_provider)
    connection = await aio_pika.connect(os.environ["AMQP_URL"])
    channel = await connection.channel()
    await declare(channel)
    report_path = os.environ["EVENTSCOPE_TRUTH"] + ".consumer"
    consumer = subprocess.Popen([sys.executable, os.path.abspath(__file__), "consume", report_path])
    for message_id in [*MESSAGES[:5], DUPLICATE, *MESSAGES[5:]]:
        body = json.dumps({"order": message_id}).encode()
        message = aio_pika.Message(body, message_id=message_id, content_type="application/json")
        await channel.default_exchange.publish(message, routing_key=QUEUE)
    await connection.close()
    tracer_provider.shutdown()
    if await asyncio.to_thread(consumer.wait, 60) != 0:
        raise SystemExit("the consumer failed")
    with open(report_path) as seen:
        consumed = json.load(seen)
    write_truth(rabbitmq_truth("aio-pika", (QUEUE, DEAD), MESSAGES, (DUPLICATE, NACKED, FAILING), consumed))


if __name__ == "__main__":
    asyncio.run(consume(sys.argv[2]) if sys.argv[1:2] == ["consume"] else publish())
