"""A plain redis-py Pub/Sub application, as a user writes it, plus the two lines of eventscope-redis.

Run as ``python plain_pubsub_app.py ROLE`` with REDIS_URL, OTEL_SERVICE_NAME and
OTEL_EXPORTER_OTLP_ENDPOINT set (the OpenTelemetry SDK set-up below is the stock one):
- ``shop``: reads commands on stdin, ``sync N`` / ``pipeline N`` / ``async N`` publish N orders on
  ``orders.placed`` that way; ``quit`` ends it. Order ids count up across commands.
- ``mailer``: a ``run_in_thread`` handler on ``orders.placed`` that publishes ``mail.sent`` per order.
- ``warehouse``: ``redis.asyncio``, a pattern subscription ``orders.*`` read with ``listen()``.
- ``audit``: a sync ``get_message`` loop on ``orders.placed``.
Subscribers print ``ready`` once subscribed and each payload they receive; SIGTERM stops them cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading

import redis
import redis.asyncio
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from eventscope_redis import RedisPubSubInstrumentor

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=200))
trace.set_tracer_provider(provider)
RedisPubSubInstrumentor().instrument()

URL = os.environ["REDIS_URL"]
STOP = threading.Event()


def say(text: str) -> None:
    print(text, flush=True)


def order(number: int) -> bytes:
    return json.dumps({"order_id": f"o-{number}", "total_cents": 100 * number}).encode()


def shop() -> None:
    # retry on a lost connection, as production clients are set up (from_url alone does not retry)
    client = redis.Redis.from_url(URL, retry=Retry(ExponentialBackoff(cap=0.5), 3))
    placed = 0
    for line in sys.stdin:
        how, _, count = line.strip().partition(" ")
        if how == "quit":
            break
        numbers = range(placed + 1, placed + 1 + int(count))
        placed += int(count)
        if how == "sync":
            for number in numbers:
                client.publish("orders.placed", order(number))
        elif how == "pipeline":
            pipe = client.pipeline()
            for number in numbers:
                pipe.publish("orders.placed", order(number))
            pipe.execute()
        elif how == "async":
            asyncio.run(_publish_async(numbers))
        say(f"published {placed}")


async def _publish_async(numbers: range) -> None:
    client = redis.asyncio.Redis.from_url(URL)
    for number in numbers:
        await client.publish("orders.placed", order(number))
    await client.aclose()


def mailer() -> None:
    client = redis.Redis.from_url(URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)

    def send_mail(message: dict) -> None:
        say(message["data"].decode())
        client.publish("mail.sent", message["data"])

    pubsub.subscribe(**{"orders.placed": send_mail})
    worker = pubsub.run_in_thread(sleep_time=0.05, daemon=True)
    while not pubsub.subscribed:
        STOP.wait(0.01)
    say("ready")
    STOP.wait()
    worker.stop()
    worker.join(5)


def warehouse() -> None:
    asyncio.run(_warehouse())


async def _warehouse() -> None:
    client = redis.asyncio.Redis.from_url(URL)
    pubsub = client.pubsub()
    await pubsub.psubscribe("orders.*")
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)

    async def read() -> None:
        async for message in pubsub.listen():
            if message["type"] == "psubscribe":
                say("ready")
            elif message["type"] == "pmessage":
                say(message["data"].decode())

    reader = asyncio.create_task(read())
    await stopping.wait()
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await pubsub.aclose()
    await client.aclose()


def audit() -> None:
    client = redis.Redis.from_url(URL)
    pubsub = client.pubsub()
    pubsub.subscribe("orders.placed")
    while not STOP.is_set():
        message = pubsub.get_message(timeout=0.1)
        if message is None:
            continue
        if message["type"] == "subscribe":
            say("ready")
        elif message["type"] == "message":
            say(message["data"].decode())
    pubsub.close()


def main(role: str) -> None:
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    {"shop": shop, "mailer": mailer, "warehouse": warehouse, "audit": audit}[role]()
    provider.shutdown()  # flush the last spans before exiting
    say("stopped")


if __name__ == "__main__":
    main(sys.argv[1])
