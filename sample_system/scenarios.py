"""Scenarios: named, seeded runs of the storefront plus faults for a set time, for a class or a test.

Each says in plain language what happens and what the dashboard should show. ``run_scenario`` is
the Python API (the dashboard runs the command line instead, ``python -m sample_system scenario
run NAME``); both write the ground truth of every injected fault to ``truth_path``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import os
import threading
import time
from collections.abc import Callable

from sample_system import cluster, comparison, faults, lease, storefront
from sample_system import config as cfg
from sample_system.bus import client_name
from sample_system.services import accounts
from sample_system.shop import Shop
from sample_system.truth import GroundTruth

DRAIN_TIMEOUT_S = 30.0  # after the load stops, how long consumers get to catch up
PROGRESS_EVERY_S = 1.0


class ScenarioError(ValueError):
    """An unknown scenario or an unusable parameter; the message says which."""


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One teaching scenario: load, faults and the words that go with them."""

    name: str
    title: str
    description: str
    what_to_look_for: str
    seconds: float = 12.0
    faults: tuple[str, ...] = ()
    rate: float = 15.0
    v1_share: float = 0.0
    burst_every_s: float = 0.0
    burst_size: int = 0
    replay: bool = False
    compare: bool = False  # the synchronous shop beside the event-driven one (sample_system.comparison)


CATALOGUE: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "happy_path",
            "Happy path",
            "Customers sign up, top up their wallets and place orders, with a burst now and then. Every "
            "order goes orders -> inventory -> payments -> shipping -> notifications, and the order view "
            "and the accounts follow along. A wallet that cannot pay gets its order declined and cancelled, and the "
            "stock goes back (the compensation path). Nothing goes wrong.",
            "One trace per order across five services, joined by links. No gaps, no duplicates, no dead "
            "letters; the bus and every consumer group agree on every stream. Bursts show as spikes in "
            "the rate and a short rise in delivery latency.",
            seconds=12,
            burst_every_s=5,
            burst_size=10,
        ),
        Scenario(
            "duplicates",
            "Duplicates",
            "The orders service sometimes publishes the same event twice, as a producer that retries "
            "after a lost acknowledgement does. Separately, notifications is subscribed to its channels "
            "twice (SUBSCRIBE and PSUBSCRIBE), so Redis hands it every message two times.",
            "Duplicate event ids on shop.orders at the bus and at every group, and on shop.users and "
            "shop.shipping at notifications only. Every copy is handled (outcome duplicate_skipped by "
            "the idempotency guard), none processed twice.",
            seconds=12,
            faults=("duplicate_publish:rate=0.15", "double_subscription:group=notifications"),
        ),
        Scenario(
            "reordering",
            "Reordering",
            "The orders service holds an event back now and then and publishes it after the next two "
            "events of the same stream (same partition).",
            "Out-of-order arrivals on shop.orders: a sequence lower than one already seen. The gap it "
            "leaves fills a moment later, so nothing is lost. The order view still ends right, because "
            "a status only moves forward.",
            seconds=12,
            faults=("reorder:rate=0.15,hold=2",),
        ),
        Scenario(
            "lossy_consumer",
            "Lossy consumer (crash and restart)",
            "The shipping service crashes for a few seconds at a time and comes back. Redis Pub/Sub "
            "keeps nothing for an absent subscriber, so what is published meanwhile is lost to shipping "
            "(only to shipping). Separately, orders now and then loses an event before it reaches Redis.",
            "Two kinds of loss. Orders lost before the broker: a gap at the bus and at every group. "
            "Payments lost to shipping: the bus has them, shipping never processed them, so those orders "
            "are never shipped. The loss view tells them apart by vantage point.",
            seconds=16,
            faults=("consumer_crash:group=shipping,start_s=3,every_s=8,for_s=2.5", "drop_before_broker:rate=0.05"),
        ),
        Scenario(
            "slow_consumer",
            "Slow consumer",
            "For a few seconds the order view takes 50 ms per event, slower than events arrive. Its "
            "backlog waits unread (in the socket buffers, and beyond them in Redis's output buffer for "
            "that client); afterwards it catches up.",
            "Delivery latency and the projection lag for group order-view climb during the window and "
            "fall after it, while the other groups stay fast. Nothing is lost: slow is not lossy, until "
            "a backlog outgrows Redis's output buffer limit for Pub/Sub clients.",
            seconds=15,
            rate=12,
            faults=("slow_consumer:group=order-view,start_s=3,for_s=5,delay_ms=50",),
        ),
        Scenario(
            "poison_message",
            "Poison message",
            "The orders service now and then publishes an order whose data breaks its schema (a bug "
            "that skipped validation). Consumers validate every event against the schema registry.",
            "Dead letters on shop.orders from inventory and order-view, each with the validation error "
            "as its reason and one attempt: a poison message is never retried. Those orders go no "
            "further; the rest of the flow is untouched.",
            seconds=12,
            faults=("poison_message:rate=0.08",),
        ),
        Scenario(
            "retries_and_dead_letters",
            "Retries and dead letters",
            "The payments handler fails half of the time (a flaky card gateway). Each delivery is retried "
            "inside its consumer span with exponential backoff and jitter, up to four attempts; after "
            "the last one the event goes to the dead-letter queue.",
            "retry events on the payments spans, with growing delays; attempts above 1; a few dead "
            "letters with reason 'failed after 4 attempts'. Processing time at payments grows by the "
            "backoff. `python -m sample_system dlq redrive ID` republishes one.",
            seconds=15,
            faults=("transient_error:group=payments,rate=0.5",),
        ),
        Scenario(
            "schema_evolution",
            "Schema evolution",
            "Half of the orders come from a legacy orders instance still publishing OrderPlaced v1 (no "
            "currency, unpriced lines); the current one publishes v2. Consumers upcast v1 to v2.",
            "Two schema versions of shop.order.placed side by side (eventscope.schema.version 1 and 2) "
            "from two sources, each its own stream. Both are processed alike: no dead letters.",
            seconds=12,
            v1_share=0.5,
        ),
        Scenario(
            "event_sourcing_replay",
            "Event-sourcing replay",
            "Every wallet change (opened, deposit, withdrawal) is appended to the accounts event store, a "
            "Redis Stream. At the end the balances are rebuilt by replaying the store and compared with "
            "the live ones, and a balance is asked for at a moment halfway through the run.",
            "Events on shop.accounts from accounts; the replay check printed at the end (rebuilt equals "
            "live), and a past balance that differs from today's. No balance is ever below zero: payments "
            "checks the wallet and declines what it cannot cover (shop.payment.declined), and inventory "
            "releases that order's stock (shop.stock.released, the compensating event).",
            seconds=12,
            replay=True,
        ),
        Scenario(
            "sync_vs_events",
            "Synchronous vs event-driven",
            "The same shop built twice, running at once under the same seeded load: once with services calling "
            "each other over HTTP (an order is accepted only when inventory, payments and shipping answered), "
            "once with events on Redis. Phases: steady load, a burst at twice the rate, shipping slow, shipping "
            "down, shipping back. With variant stream, shipping reads its channel from a Redis Stream with a "
            "consumer group instead of Pub/Sub.",
            "The Compare page: acceptance is fast and steady on the event-driven side, slow and as slow as the "
            "slowest service on the synchronous side. While shipping is down the synchronous side fails every "
            "order; the event-driven side accepts them all, and on Pub/Sub loses their shipping (at-most-once), "
            "while on a Redis Stream it ships them late, once shipping is back.",
            seconds=comparison.TOTAL_S,
            rate=8,
            compare=True,
        ),
        Scenario(
            "clock_skew",
            "Clock skew",
            "After three seconds the orders service's clock runs 800 ms ahead. Its events and producer "
            "spans carry that clock's time; consumers use their own.",
            "Negative delivery times on shop.orders (consumers start 'before' the producer sent), counted "
            "as negative_delivery and shown raw, never corrected. Other channels stay normal.",
            seconds=12,
            faults=("clock_skew:skew_ms=800,start_s=3",),
        ),
    )
}


def describe() -> list[dict]:
    """The catalogue as the command line's ``scenario list --json`` prints it."""
    return [
        {
            "name": s.name,
            "title": s.title,
            "description": s.description,
            "what_to_look_for": s.what_to_look_for,
            "seconds": s.seconds,
        }
        for s in CATALOGUE.values()
    ]


def _linked_stop(outer: threading.Event | None, seconds: float) -> threading.Event:
    """An event set after ``seconds`` or as soon as ``outer`` is set."""
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            if outer is not None and outer.wait(0.1):
                break
            if outer is None:
                stop.wait(0.1)
        stop.set()

    threading.Thread(target=watch, name="scenario-clock", daemon=True).start()
    return stop


def run_scenario(
    name: str,
    seconds: float | None = None,
    seed: int = cfg.DEFAULT_SEED,
    truth_path: str | None = None,
    redis_url: str | None = None,
    stop_event: threading.Event | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    exporter_factory=None,
    metric_reader_factory=None,
    variant: str = comparison.PUBSUB,
    results_path: str | None = None,
) -> dict:
    """Run scenario ``name`` against Redis and return a summary; stops early when ``stop_event`` is set."""
    scenario = CATALOGUE.get(name)
    if scenario is None:
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(CATALOGUE)}")
    seconds = scenario.seconds if seconds is None else seconds
    if seconds <= 0:
        raise ScenarioError(f"seconds must be positive, got {seconds}")
    say = progress or (lambda line: None)
    config = cfg.load_config(
        os.environ,
        redis_url=redis_url,
        seed=seed,
        rate=scenario.rate,
        v1_share=scenario.v1_share,
        burst_every_s=scenario.burst_every_s,
        burst_size=scenario.burst_size,
    )
    settings = {s.name: s for s in (faults.parse_setting(f, f"scenario {name}") for f in scenario.faults)}
    truth = GroundTruth(truth_path)
    client = cluster.connect(config.redis_url, config.redis_cluster, client_name=client_name(f"scenario-{name}"))
    hold = lease.ScenarioLease(client, name, say, stop_event)
    try:
        acquired = hold.acquire()
        if stop_event is not None and stop_event.is_set():
            say(f"scenario {name}: stopped before it started")
            return {"scenario": name, "issued": {}, "outcomes": {}, "order_view_max_lag_ms": 0.0, "truth": {}}
        if not acquired:
            holder = client.get(lease.LEASE_KEY)
            raise ScenarioError(
                f"the bus is busy: scenario {holder.decode() if holder else '?'} holds {lease.LEASE_KEY}"
            )
        if scenario.compare:
            summary = _compare(
                config, scenario, seconds, variant, results_path, truth, stop_event, say, exporter_factory
            )
        else:
            injector = faults.FaultInjector(settings, seed, truth)
            run = (stop_event, truth, say, exporter_factory, metric_reader_factory)
            summary = _run_shop(config, scenario, seconds, injector, *run)
    finally:
        hold.release()
        client.close()
        truth.close()
    summary["truth"] = dict(truth.counts)
    return summary


def _run_shop(config, scenario: Scenario, seconds: float, injector, outer, truth, say, exporters, readers) -> dict:
    name, seed = scenario.name, config.seed
    with Shop(config, exporters, faults=injector, metric_reader_factory=readers) as shop:
        say(f"scenario {name}: {scenario.title}; {seconds:g}s at {scenario.rate:g} commands/s, seed {seed}")
        say(f"scenario {name}: faults {', '.join(scenario.faults) or 'none'}")
        return _drive(shop, scenario, seconds, outer, truth, say)


def _compare(config, scenario: Scenario, seconds: float, variant, results_path, truth, outer, say, exporters) -> dict:
    """The sync_vs_events run: both shops, one injector on the phases' clock, the results written as JSON."""
    if variant not in comparison.VARIANTS:
        raise ScenarioError(f"variant must be one of {', '.join(comparison.VARIANTS)}, got {variant!r}")
    plan = comparison.phases(seconds / scenario.seconds)
    injector = faults.FaultInjector(comparison.fault_settings(plan), config.seed, truth)
    say(f"scenario {scenario.name}: {scenario.title}; {seconds:g}s at {config.rate:g} commands/s, variant {variant}")
    stop = outer or threading.Event()
    results = comparison.run(config, variant, injector, plan, stop, say, exporters)
    if results_path:
        comparison.write(results, results_path)
    sides = results["sides"]
    outcomes = {side: dict(collections.Counter(o["outcome"] for o in sides[side]["orders"])) for side in sides}
    return {"scenario": scenario.name, "variant": variant, "outcomes": outcomes, "results": results_path}


def _drive(shop: Shop, scenario: Scenario, seconds: float, outer, truth: GroundTruth, say) -> dict:
    stop = _linked_stop(outer, seconds)
    issued: dict = {}
    config = shop.config

    def load() -> None:
        issued.update(
            storefront.run_load(
                shop.handlers(), config.rate, config.seed, stop, None, config.burst_every_s, config.burst_size
            )
        )

    loader = threading.Thread(target=load, name="storefront", daemon=True)
    started = time.monotonic()
    midpoint_ms = None
    loader.start()
    while loader.is_alive():
        loader.join(PROGRESS_EVERY_S)
        elapsed = time.monotonic() - started
        if midpoint_ms is None and elapsed >= seconds / 2:
            midpoint_ms = int(time.time() * 1000)
        say(_progress_line(shop, elapsed, truth))
    shop.release_held()
    if not (outer is not None and outer.is_set()):
        shop.wait_idle(DRAIN_TIMEOUT_S)
    summary = {
        "scenario": scenario.name,
        "issued": dict(issued),
        "outcomes": {c.group: dict(c.outcomes) for c in shop.consumers},
        "order_view_max_lag_ms": round(shop.order_view.max_lag_ms, 1),
    }
    if scenario.replay:
        summary["replay"] = _replay_check(shop, midpoint_ms, say)
    return summary


def _progress_line(shop: Shop, elapsed: float, truth: GroundTruth) -> str:
    injected = ", ".join(f"{k}={v}" for k, v in sorted(truth.counts.items())) or "none"
    lag = shop.order_view.last_lag_ms
    lag_text = f"{lag:.0f}ms" if lag is not None else "-"
    return f"t={elapsed:5.1f}s deliveries={shop.deliveries()} order-view lag={lag_text} injected: {injected}"


def _replay_check(shop: Shop, midpoint_ms: int | None, say) -> dict:
    pipe = shop.client.pipeline(transaction=True)
    pipe.xrange(accounts.EVENT_STORE)
    pipe.hgetall(accounts.LIVE_BALANCES)
    entries, live_raw = pipe.execute()
    replayed = accounts.fold(accounts.stored(fields) for _, fields in entries)
    live = {k.decode(): int(v) for k, v in live_raw.items()}
    equal = replayed == live
    say(f"replay: {len(replayed)} accounts rebuilt from {len(entries)} stored events; equal to live: {equal}")
    result = {"accounts": len(replayed), "events": len(entries), "equal_to_live": equal}
    account = next(iter(sorted(live)), None)
    if account is not None and midpoint_ms is not None:
        then = accounts.balance_at(shop.client, account, midpoint_ms)
        moment = datetime.datetime.fromtimestamp(midpoint_ms / 1000, datetime.UTC).isoformat(timespec="seconds")
        then_text = "no account yet" if then is None else f"{then / 100:.2f}"
        say(f"replay: {account} had {then_text} at {moment}; has {live[account] / 100:.2f} now")
        result.update({"account": account, "at_ms": midpoint_ms, "balance_then": then, "balance_now": live[account]})
    return result
