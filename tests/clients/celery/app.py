"""A Celery 5 app on a Redis broker, traced by opentelemetry-instrumentation-celery.

``app.py`` publishes tasks from the service ``celery-client`` and runs a worker (service
``celery-worker``, solo pool) in a child process. It plants: one task published twice with the same
task id, one task that retries twice and then succeeds, one task that fails. No result backend, no
dead-letter queue (Celery has none). Ground truth goes to $EVENTSCOPE_TRUTH.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis  # noqa: E402
from celery import Celery  # noqa: E402
from celery.signals import worker_process_shutdown, worker_shutdown  # noqa: E402
from opentelemetry.instrumentation.celery import CeleryInstrumentor  # noqa: E402
from telemetry import provider, write_truth  # noqa: E402

BROKER = os.environ["REDIS_URL"]
DONE = "eventscope-test:celery:done"
RETRIES = 2

app = Celery("shop", broker=BROKER)
app.conf.update(
    task_default_queue="shop",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=1,
)
counter = redis.Redis.from_url(BROKER)


@app.task(name="shop.bill")
def bill(order: int) -> int:
    counter.incr(DONE)
    return order


@app.task(name="shop.ship")
def ship(order: int) -> int:
    counter.incr(DONE)
    return order


@app.task(name="shop.charge", bind=True, max_retries=RETRIES + 1)
def charge(self, order: int) -> int:
    if self.request.retries < RETRIES:
        raise self.retry(countdown=0.2, exc=RuntimeError("card declined, try again"))
    counter.incr(DONE)
    return order


@app.task(name="shop.refund")
def refund(order: int) -> int:
    counter.incr(DONE)
    raise ValueError(f"refund {order}: no such payment")


def worker() -> None:
    tracer_provider = provider("celery-worker")
    CeleryInstrumentor().instrument(tracer_provider=tracer_provider)

    def flush(**_kwargs) -> None:
        tracer_provider.shutdown()

    worker_shutdown.connect(flush, weak=False)
    worker_process_shutdown.connect(flush, weak=False)
    app.worker_main(
        ["worker", "--pool=solo", "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    )


def client() -> None:
    counter.delete(DONE)
    worker_process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "worker"])
    tracer_provider = provider("celery-client")
    CeleryInstrumentor().instrument(tracer_provider=tracer_provider)
    published: dict[str, list[str]] = {"shop.bill": [], "shop.ship": [], "shop.charge": [], "shop.refund": []}

    def send(task, order: int, task_id: str | None = None) -> str:
        task_id = task_id or str(uuid.uuid4())
        task.apply_async(args=(order,), task_id=task_id)
        published[task.name].append(task_id)
        return task_id

    for order in range(6):
        send(bill, order)
        send(ship, order)
    duplicate = published["shop.bill"][2]
    send(bill, 2, task_id=duplicate)
    retried = send(charge, 100)
    failed = send(refund, 200)
    terminal = sum(len(ids) for ids in published.values())
    deadline = time.monotonic() + 60
    while int(counter.get(DONE) or 0) < terminal:
        if time.monotonic() > deadline or worker_process.poll() is not None:
            raise SystemExit(f"worker finished {counter.get(DONE)} of {terminal} tasks")
        time.sleep(0.1)
    time.sleep(0.3)  # the last task's span ends after its body returns
    worker_process.send_signal(signal.SIGTERM)
    worker_process.wait(timeout=30)
    tracer_provider.shutdown()
    unique = {task_id for ids in published.values() for task_id in ids}
    write_truth(
        {
            "system": "celery",
            "channel": "shop",
            "producer_service": "celery-client",
            "consumer_service": "celery-worker",
            "published": published,
            "messages": len(unique),
            "publishes": terminal,
            "duplicates": {duplicate: 1},
            "redeliveries": {retried: RETRIES},
            "failed": [failed],
            "dead_lettered": [],
            "lost": [],
            "deliveries": terminal + RETRIES,
            "deliveries_by_type": {
                name: len(ids) + (RETRIES if name == "shop.charge" else 0) for name, ids in published.items()
            },
        }
    )


if __name__ == "__main__":
    worker() if sys.argv[1:] == ["worker"] else client()
