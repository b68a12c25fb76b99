"""The shop: every service in one process (like HotROD's ``all``), wired to one Redis.

Producers: orders (and its legacy v1 instance), inventory, payments, shipping, accounts. Consumer
groups: inventory, payments, shipping, notifications, accounts, order-view. Each service has its
own tracer and meter provider, so each shows up under its own ``service.name``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection

import redis
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace.export import SpanExporter

from sample_system import cluster, storefront, stream_channel, telemetry
from sample_system.bus import Consumer, Practices, Publisher, client_name, publisher_name
from sample_system.config import SampleConfig
from sample_system.deadletters import DeadLetterQueue
from sample_system.faults import FaultInjector
from sample_system.registry import SchemaRegistry
from sample_system.retry import RetryPolicy
from sample_system.services import accounts, inventory, notifications, order_view, orders, payments, shipping
from sample_system.stream_channel import StreamConsumer
from sample_system.wallet import Wallets

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0  # consumers finish the delivery in hand; one stuck on a dead Redis is abandoned
SERVICES = (
    orders.SERVICE,
    inventory.SERVICE,
    payments.SERVICE,
    shipping.SERVICE,
    notifications.SERVICE,
    accounts.SERVICE,
    order_view.SERVICE,
)
CONSUMER_GROUPS = tuple(name for name in SERVICES if name != orders.SERVICE)
CHANNELS_OF = {
    inventory.SERVICE: inventory.CHANNELS,
    payments.SERVICE: payments.CHANNELS,
    shipping.SERVICE: shipping.CHANNELS,
    notifications.SERVICE: notifications.CHANNELS,
    accounts.SERVICE: accounts.CHANNELS,
    order_view.SERVICE: order_view.CHANNELS,
}
LOAD = "storefront"  # runs the load generator with the command side of orders and accounts
IDLE_QUIET_S = 1.0  # no delivery for this long = every consumer has caught up
STATE_CLIENT_NAME = client_name("shop")  # the shared connection: dedupe claims, DLQ, stock, projections, wallets


def instance_id() -> str:
    """A fresh producer instance id: a restarted producer is a new source, hence a new stream."""
    return os.urandom(2).hex()


class Shop:
    """Starts the consumers, then accepts commands; ``close`` stops everything and flushes telemetry."""

    def __init__(
        self,
        config: SampleConfig,
        exporter_factory: Callable[[], SpanExporter | None] | None = None,
        faults: FaultInjector | None = None,
        metric_reader_factory: Callable[[], MetricReader | None] | None = None,
        groups: Collection[str] | None = None,
        stream_groups: Collection[str] = (),
    ):
        """``groups``: the consumer groups to run in this process (default: all of them).

        ``stream_groups`` read their channels from Redis Streams (sample_system.stream_channel) instead of
        Pub/Sub; every producer then also appends what it publishes on those channels to their streams.
        """
        make_exporter = exporter_factory or (lambda: None)
        make_reader = metric_reader_factory or (lambda: None)
        self.config = config
        self.faults = faults
        self._stop = threading.Event()
        self._providers = {name: telemetry.tracer_provider(name, config.tracing, make_exporter()) for name in SERVICES}
        metrics_on = config.tracing and (exporter_factory is None or metric_reader_factory is not None)
        self._meters = {name: telemetry.meter_provider(name, metrics_on, make_reader()) for name in SERVICES}
        self.metrics = {name: telemetry.MessagingMetrics(provider) for name, provider in self._meters.items()}
        self.client = cluster.connect(config.redis_url, config.redis_cluster, client_name=STATE_CLIENT_NAME)
        self._publishing: list[redis.Redis] = []
        self.stream_groups = frozenset(stream_groups)
        self._streamed = frozenset(c for g, cs in CHANNELS_OF.items() if g in self.stream_groups for c in cs)
        if faults is not None:
            faults.use_redis(self.client)
        self.registry = SchemaRegistry()
        self.dead_letters = DeadLetterQueue(self.client)
        self._build_services()
        self.consumers = [
            self._consumer(service, group, channels, handle)
            for service, group, channels, handle in (
                (inventory.SERVICE, inventory.SERVICE, inventory.CHANNELS, self.inventory.handle),
                (payments.SERVICE, payments.SERVICE, payments.CHANNELS, self.payments.handle),
                (shipping.SERVICE, shipping.SERVICE, shipping.CHANNELS, self.shipping.handle),
                (notifications.SERVICE, notifications.SERVICE, notifications.CHANNELS, self.notifications.handle),
                (accounts.SERVICE, accounts.SERVICE, accounts.CHANNELS, self.accounts.handle),
                (order_view.SERVICE, order_view.SERVICE, order_view.CHANNELS, self.order_view.handle),
            )
            if groups is None or group in groups
        ]
        self._threads: list[threading.Thread] = []

    def publisher(self, service: str, instance: str | None = None) -> Publisher:
        """A producer instance of ``service`` (its own client, so its own source) with the registry, faults, metrics."""
        source = f"/sample/{instance or service}/{instance_id()}"
        config = self.config
        client = cluster.connect(
            config.redis_url, config.redis_cluster, client_name=publisher_name(instance or service)
        )
        self._publishing.append(client)
        return Publisher(
            client,
            self._providers[service],
            source,
            registry=self.registry,
            faults=self.faults,
            metrics=self.metrics[service],
            steps=[stream_channel.tee(self.client, self._streamed)] if self._streamed else [],
        )

    def _build_services(self) -> None:
        self.publishers = [
            self.publisher(orders.SERVICE),
            self.publisher(orders.SERVICE, "orders-legacy"),
            self.publisher(inventory.SERVICE),
            self.publisher(payments.SERVICE),
            self.publisher(shipping.SERVICE),
            self.publisher(accounts.SERVICE),
            self.publisher(accounts.SERVICE, "accounts-users"),
        ]
        orders_pub, legacy, inventory_pub, payments_pub, shipping_pub, accounts_pub, users_pub = self.publishers
        self.orders = orders.Orders(orders_pub, legacy, self.config.v1_share)
        self.inventory = inventory.Inventory(self.client, inventory_pub)
        self.payments = payments.Payments(payments_pub, Wallets(self.client))
        self.shipping = shipping.Shipping(shipping_pub)
        self.notifications = notifications.Notifications()
        self.accounts = accounts.Accounts(self.client, accounts_pub, users_pub)
        self.order_view = order_view.OrderView(self.client, self.metrics[order_view.SERVICE])

    def _consumer(self, service: str, group: str, channels: list[str], handle) -> Consumer | StreamConsumer:
        if group in self.stream_groups:
            provider = self._providers[service]
            return StreamConsumer(self.config.redis_url, provider, group, channels, handle, self.faults)
        practices = Practices(
            client=self.client,
            registry=self.registry,
            dead_letters=self.dead_letters,
            retry=RetryPolicy(max_attempts=self.config.max_attempts, base_ms=self.config.backoff_ms),
            dedupe_window_s=self.config.dedupe_window_s,
            faults=self.faults,
            metrics=self.metrics[service],
            seed=self.config.seed,
        )
        parent = self.config.consumer_parent == "producer"
        provider = self._providers[service]
        return Consumer(self.config.redis_url, provider, group, channels, handle, parent, practices=practices)

    @property
    def providers(self) -> dict[str, trace.TracerProvider]:
        """Each service's tracer provider, by service name."""
        return dict(self._providers)

    def consumer(self, group: str) -> Consumer:
        return next(c for c in self.consumers if c.group == group)

    def handlers(self) -> dict[str, Callable[[dict], object]]:
        """The storefront's commands, by name."""
        return {
            storefront.PLACE_ORDER: self.orders.place_order,
            storefront.SIGN_UP: self.accounts.sign_up,
            storefront.TOP_UP: self.accounts.top_up,
        }

    def deliveries(self) -> int:
        """Deliveries handled so far by every consumer group together."""
        return sum(consumer.processed for consumer in self.consumers)

    def published(self) -> int:
        """Events PUBLISHed so far by every producer together."""
        return sum(publisher.published for publisher in self.publishers)

    def wait_idle(self, timeout_s: float = 30.0, quiet_s: float = IDLE_QUIET_S) -> bool:
        """Wait until no consumer has handled anything for ``quiet_s``; False on timeout."""
        deadline = time.monotonic() + timeout_s
        last, since = self.deliveries(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.deliveries()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return True
        return False

    def release_held(self) -> int:
        """Publish every event a fault still holds back (those that cannot be sent are lost, and logged)."""
        if self.faults is None:
            return 0
        try:
            return self.faults.release_held()
        except redis.RedisError as exc:
            log.warning("could not publish the events a reorder fault held back: %s", exc)
            return 0

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
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        telemetry.shutdown(list(self._providers.values()), list(self._meters.values()))
        if self.faults is not None:
            self.faults.restore()
        for client in (self.client, *self._publishing):
            client.close()

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
