"""The continuous runner behind ``python -m sample_system run``: a shop that makes way for scenarios.

It runs one Shop after another. While a scenario holds the lease (sample_system.lease), the runner
has no shop at all: its consumers are unsubscribed, its load is stopped and its telemetry flushed.
When the lease is gone it starts a fresh Shop, whose producers are new instances with new sources,
so the streams after a pause are new streams, which is the truth. The load continues the same
seeded command sequence across shops, so order ids never repeat.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping

from sample_system import cluster, comparison, faults, lease, storefront
from sample_system.bus import client_name
from sample_system.config import SampleConfig
from sample_system.shop import LOAD, STOP_TIMEOUT_S, Shop
from sample_system.sync.shop import SyncShop
from sample_system.truth import GroundTruth

log = logging.getLogger(__name__)

CLIENT_NAME = client_name("demo-runner")
DRAIN_TIMEOUT_S = 3.0  # before a pause, the consumers get this long to handle what is in flight
DRAIN_QUIET_S = 0.5
WATCH_S = 0.1  # how often the main thread looks at what the heartbeat last saw (no Redis round trip)


@dataclasses.dataclass
class Totals:
    """What every shop of one runner did together."""

    issued: Counter[str] = dataclasses.field(default_factory=Counter)
    handled: Counter[str] = dataclasses.field(default_factory=Counter)
    shops: int = 0
    pauses: int = 0


class ContinuousRunner:
    """Runs shops until ``stop``; closes the current one while a scenario holds the bus."""

    def __init__(
        self,
        config: SampleConfig,
        services: Collection[str],
        settings: Mapping[str, faults.FaultSetting],
        truth: GroundTruth,
        say: Callable[[str], None],
        sync: bool = False,
    ):
        """``sync``: beside each shop, the synchronous one (sample_system.sync) under the same seeded load."""
        self.config = config
        self.sync = sync
        self._sync_commands = storefront.commands(config.seed)
        self.services = list(services)
        self.settings = dict(settings)
        self.truth = truth
        self._say = say
        self._commands = storefront.commands(config.seed)
        self.totals = Totals()

    def run(self, stop: threading.Event) -> Totals:
        """Alternate between running a shop and pausing for scenarios until ``stop`` is set."""
        client = cluster.connect(
            self.config.redis_url,
            self.config.redis_cluster,
            client_name=CLIENT_NAME,
            socket_connect_timeout=2,
            socket_timeout=5,
        )
        presence = lease.RunnerPresence(client).start()
        try:
            while not stop.is_set():
                if presence.holder is None:
                    self._run_shop(presence, stop)
                if not stop.is_set():
                    self._pause(presence, stop)
        finally:
            presence.leave()
            client.close()
        return self.totals

    def _run_shop(self, presence: lease.RunnerPresence, stop: threading.Event) -> None:
        """Run one shop until ``stop`` or until a scenario holds the lease; the shop is closed on return."""
        injector = faults.FaultInjector(self.settings, self.config.seed, self.truth) if self.settings else None
        load_stop = threading.Event()
        with Shop(self.config, faults=injector, groups=self.services) as shop, self._sync_shop(injector) as sync:
            self.totals.shops += 1
            self._announce(shop)
            loader = threading.Thread(target=self._load, args=(shop, load_stop), name="storefront", daemon=True)
            if LOAD in self.services:
                loader.start()
            if sync is not None:
                args = (sync.handlers(), load_stop, self._sync_commands)
                threading.Thread(target=self._load_sync, args=args, name="storefront-sync", daemon=True).start()
            while not stop.wait(WATCH_S) and presence.holder is None:
                pass
            load_stop.set()
            if loader.is_alive():
                loader.join(STOP_TIMEOUT_S)
                if loader.is_alive():
                    log.warning("the load did not stop within %.0fs; closing the shop under it", STOP_TIMEOUT_S)
            shop.release_held()
            shop.wait_idle(DRAIN_TIMEOUT_S, DRAIN_QUIET_S)  # events in flight finish their journey: no cut tails
        self.totals.handled.update({consumer.group: consumer.processed for consumer in shop.consumers})

    def _load(self, shop: Shop, load_stop: threading.Event) -> None:
        config = self.config
        issued = storefront.run_load(
            shop.handlers(),
            config.rate,
            config.seed,
            load_stop,
            None,
            config.burst_every_s,
            config.burst_size,
            stream=self._commands,
        )
        self.totals.issued.update(issued)

    def _sync_shop(self, injector: faults.FaultInjector | None) -> contextlib.AbstractContextManager:
        if not self.sync:
            return contextlib.nullcontext()
        gates = comparison.sync_gates(injector) if injector is not None else None
        self._say("sample system: the synchronous shop runs beside it (services sync-*, HTTP)")
        return SyncShop(self.config, gates=gates)

    def _load_sync(self, handlers: dict, load_stop: threading.Event, stream) -> None:
        config = self.config
        issued = storefront.run_load(
            handlers, config.rate, config.seed, load_stop, None, config.burst_every_s, config.burst_size, stream=stream
        )
        self.totals.issued.update({f"sync_{name}": count for name, count in issued.items()})

    def _announce(self, shop: Shop) -> None:
        load = LOAD in self.services
        shown = [LOAD, "orders", "accounts (commands)"] if load else []
        shown += [consumer.group for consumer in shop.consumers]
        sources = ", ".join(publisher.source for publisher in shop.publishers) if load else "none"
        config = self.config
        self._say(f"sample system: services {', '.join(shown)} on {config.redis_url}")
        self._say(
            f"sample system: {config.rate:g} commands/s, seed {config.seed}, "
            f"faults: {', '.join(self.settings) or 'none'}; sources {sources}"
        )

    def _pause(self, presence: lease.RunnerPresence, stop: threading.Event) -> None:
        """With no shop running: acknowledge the lease, if one is held, and wait until it is gone."""
        holder = presence.paused_for()
        if holder is None:
            return
        self.totals.pauses += 1
        self._say(f"sample system: paused, scenario {holder} has the bus")
        while presence.paused_for() is not None:
            if stop.wait(lease.POLL_S):
                return
        self._say("sample system: scenario over, resuming with a fresh shop (new sources)")
