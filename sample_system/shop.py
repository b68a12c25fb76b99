"""The shop: every service in one process (like HotROD's ``all``), wired to one Redis."""

from __future__ import annotations

import os
import threading

import redis
from opentelemetry.sdk.trace.export import SpanExporter

from sample_system import telemetry
from sample_system.bus import Consumer, Publisher
from sample_system.config import SampleConfig
from sample_system.services import inventory
from sample_system.services.orders import Orders

READY_TIMEOUT_S = 10.0


def instance_id() -> str:
    """A fresh producer instance id: a restarted producer is a new source, hence a new stream."""
    return os.urandom(2).hex()


class Shop:
    """Starts the consumers, then accepts orders; ``close`` stops everything and flushes spans."""

    def __init__(self, config: SampleConfig, exporter_factory=None):
        make_exporter = exporter_factory or (lambda: None)
        self._config = config
        self._stop = threading.Event()
        self._providers = {
            name: telemetry.tracer_provider(name, config.tracing, make_exporter())
            for name in (Orders.SERVICE, inventory.SERVICE)
        }
        self._client = redis.Redis.from_url(config.redis_url)
        publisher = Publisher(self._client, self._tracer(Orders.SERVICE), f"/sample/{Orders.SERVICE}/{instance_id()}")
        self.orders = Orders(publisher)
        self.inventory = inventory.Inventory()
        self.consumers = [
            Consumer(
                config.redis_url,
                self._tracer(inventory.SERVICE),
                inventory.SERVICE,
                inventory.CHANNELS,
                self.inventory.handle,
                parent_from_producer=config.consumer_parent == "producer",
            )
        ]
        self._threads: list[threading.Thread] = []

    def _tracer(self, service: str):
        return self._providers[service].get_tracer(telemetry.INSTRUMENTATION_SCOPE)

    def start(self) -> Shop:
        for consumer in self.consumers:
            thread = threading.Thread(target=consumer.run, args=(self._stop,), name=consumer.group, daemon=True)
            thread.start()
            self._threads.append(thread)
        for consumer in self.consumers:
            if not consumer.ready.wait(READY_TIMEOUT_S):
                raise RuntimeError(f"consumer {consumer.group} did not subscribe within {READY_TIMEOUT_S}s")
        return self

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        telemetry.shutdown(list(self._providers.values()))
        self._client.close()

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def __enter__(self) -> Shop:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def exporter_factory_for(exporter: SpanExporter):
    """For tests: every service exports to the same exporter."""
    return lambda: exporter
