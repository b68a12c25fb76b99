"""A redis-py Pub/Sub app traced by opentelemetry-instrumentation-redis, as a user sets it up.

``RedisInstrumentor().instrument()`` in the service ``price-feed``: a subscriber thread listens on
``prices``; the app publishes 6 JSON prices one by one and 2 more in one pipeline, and waits until
the subscriber got all 8. The instrumentation traces each command as a database call (a CLIENT span,
its arguments masked); the subscriber's messages are not traced at all. Ground truth goes to
$EVENTSCOPE_TRUTH.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis  # noqa: E402
from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: E402
from telemetry import provider, write_truth  # noqa: E402

CHANNEL, SERVICE = "prices", "price-feed"
SINGLE, PIPELINED = 6, 2


def price(n: int) -> str:
    return json.dumps({"symbol": "ACME", "price": 100 + n})


def subscribe(client: redis.Redis, ready: threading.Event, received: list[bytes]) -> None:
    pubsub = client.pubsub()
    pubsub.subscribe(CHANNEL)
    deadline = time.monotonic() + 20
    while len(received) < SINGLE + PIPELINED and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] == "subscribe":
            ready.set()
        elif message and message["type"] == "message":
            received.append(message["data"])
    pubsub.close()


def main() -> None:
    tracer_provider = provider(SERVICE)
    RedisInstrumentor().instrument(tracer_provider=tracer_provider)
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    ready, received = threading.Event(), []
    subscriber = threading.Thread(target=subscribe, args=(client, ready, received))
    subscriber.start()
    if not ready.wait(10):
        raise SystemExit("the subscriber never subscribed")
    for n in range(SINGLE):
        client.publish(CHANNEL, price(n))
    pipeline = client.pipeline(transaction=False)
    for n in range(SINGLE, SINGLE + PIPELINED):
        pipeline.publish(CHANNEL, price(n))
    pipeline.execute()
    subscriber.join()
    tracer_provider.shutdown()
    if len(received) != SINGLE + PIPELINED:
        raise SystemExit(f"the subscriber got {len(received)} messages")
    write_truth(
        {
            "channel": CHANNEL,
            "service": SERVICE,
            "publishes": SINGLE + PIPELINED,
            "publish_spans": SINGLE,
            "pipelines": 1,
            "received": len(received),
        }
    )


if __name__ == "__main__":
    main()
