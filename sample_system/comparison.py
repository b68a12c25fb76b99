"""The ``sync_vs_events`` scenario: the synchronous shop and the event-driven one side by side.

Both shops run at once on one Redis under the same seeded load (each side issues the same command
sequence) and the same faults, which one injector decides for both: in phases, steady load, a burst at
twice the rate, shipping slow, shipping down, shipping back. Every order is written down per side: the
phase it was placed in, when it was accepted (sync: orders answered; events: OrderPlaced was
published), when all its side effects were done (the shipping email went out), and how it ended:
``shipped``, ``declined`` (stock or wallet said no), ``failed`` (a service did not answer) or ``lost``
(paid, never shipped). Every span both shops make is tallied by order (spans, traces, services, the
service-to-service edges, the services that worked before the order was accepted). The whole record is
one JSON document, the results; the fault injections go to the ground truth as in every scenario.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import redis
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.semconv._incubating.attributes import cloudevents_attributes as cloudevents

from sample_system import faults, storefront
from sample_system.config import SampleConfig
from sample_system.services import order_view, shipping
from sample_system.shop import Shop
from sample_system.stream_channel import stream_key
from sample_system.sync import checkout
from sample_system.sync.services import Gate
from sample_system.sync.shop import SyncShop

SYNC = "sync"
EVENTS = "events"
PUBSUB = "pubsub"
STREAM = "stream"
VARIANTS = (PUBSUB, STREAM)
SHIPPED, DECLINED, FAILED, LOST = "shipped", "declined", "failed", "lost"
SLOW_DELAY_MS = 400  # shipping then takes longer per event than events arrive: its backlog grows
DRAIN_TIMEOUT_S = 30.0
ORDER_KEYS = (cloudevents.CLOUDEVENTS_EVENT_SUBJECT, checkout.ORDER_ID_ATTRIBUTE)
VIEW_OUTCOMES = {"shipped": SHIPPED, "cancelled": DECLINED, "payment_failed": DECLINED, "stock_rejected": DECLINED}


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    load: float  # times the scenario's rate


TOTAL_S = 20.0  # the phases below, at scale 1
PHASES = (
    Phase("steady", 4, 1.0),
    Phase("burst", 3, 2.0),
    Phase("shipping_slow", 4, 1.0),
    Phase("shipping_down", 5, 1.0),
    Phase("shipping_back", 4, 1.0),
)


def phases(scale: float = 1.0) -> list[dict]:
    """The phases with their start and end (seconds from the start), each ``scale`` times as long."""
    out, start = [], 0.0
    for phase in PHASES:
        end = start + phase.seconds * scale
        out.append({"name": phase.name, "start_s": round(start, 3), "end_s": round(end, 3), "load": phase.load})
        start = end
    return out


def fault_settings(plan: list[dict]) -> dict[str, faults.FaultSetting]:
    """Shipping slow and shipping down, on the phases' clock, as the fault catalogue's settings."""
    by = {p["name"]: p for p in plan}
    slow, down = by["shipping_slow"], by["shipping_down"]
    texts = (
        f"slow_consumer:group={shipping.SERVICE},start_s={slow['start_s']},for_s={slow['end_s'] - slow['start_s']:g},"
        f"delay_ms={SLOW_DELAY_MS}",
        f"consumer_crash:group={shipping.SERVICE},start_s={down['start_s']},for_s={down['end_s'] - down['start_s']:g},"
        f"every_s=0,stop_s={down['end_s']}",  # once: the catalogue's default repeats it every 8 s
    )
    return {s.name: s for s in (faults.parse_setting(t, "scenario sync_vs_events") for t in texts)}


class Ledger:
    """Every order of one side: placed when, in which phase, accepted and done when, and how it ended."""

    def __init__(self, side: str):
        self.side = side
        self.orders: dict[str, dict] = {}
        self._lock = threading.Lock()

    def placed(
        self, order_id: str, phase: str, placed_ns: int, accepted_ns: int | None, outcome: str | None, reason: str = ""
    ) -> None:
        entry = {"order_id": order_id, "phase": phase, "placed_ns": placed_ns, "accepted_ns": accepted_ns}
        entry.update({"done_ns": accepted_ns if outcome == SHIPPED else None, "outcome": outcome, "reason": reason})
        with self._lock:
            self.orders[order_id] = entry

    def done(self, order_id: str) -> None:
        now = time.time_ns()
        with self._lock:
            entry = self.orders.get(order_id)
            if entry is not None and entry["done_ns"] is None:
                entry["done_ns"] = now


class SpanTally(SpanProcessor):
    """Keeps the few facts of every ended span that the complexity figures need."""

    def __init__(self):
        self.spans: list[dict] = []
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        parent = span.parent.span_id if span.parent is not None else None
        order = next((span.attributes.get(k) for k in ORDER_KEYS if span.attributes.get(k)), None)
        fact = {
            "trace": span.context.trace_id,
            "span": span.context.span_id,
            "parent": parent,
            "service": span.resource.attributes.get("service.name"),
            "start_ns": span.start_time,
            "order": order,
        }
        with self._lock:
            self.spans.append(fact)


def complexity(spans: list[dict], orders: dict[str, dict]) -> dict:
    """Per order: spans, traces and services a debugger opens; edges between services; who worked before acceptance."""
    by_id = {s["span"]: s for s in spans}
    traces_of: dict[str, set] = defaultdict(set)
    for s in spans:
        if s["order"] in orders:
            traces_of[s["order"]].add(s["trace"])
    in_trace: dict[int, list[dict]] = defaultdict(list)
    for s in spans:
        in_trace[s["trace"]].append(s)
    counts, trace_counts, service_counts = [], [], []
    services, edges, needed = set(), set(), set()
    for order_id, traces in traces_of.items():
        entry = orders[order_id]
        mine = [s for t in traces for s in in_trace[t]]
        counts.append(len(mine))
        trace_counts.append(len(traces))
        service_counts.append(len({s["service"] for s in mine}))
        services.update(s["service"] for s in mine)
        for s in mine:
            parent = by_id.get(s["parent"])
            if parent is not None and parent["service"] != s["service"]:
                edges.add((parent["service"], s["service"]))
            if entry["accepted_ns"] is not None and s["start_ns"] <= entry["accepted_ns"]:
                needed.add(s["service"])
    median = lambda values: statistics.median(values) if values else None  # noqa: E731
    return {
        "orders_traced": len(traces_of),
        "spans_per_order": median(counts),
        "traces_per_order": median(trace_counts),
        "services_per_order": median(service_counts),
        "services": sorted(services),
        "edges": sorted([a, b] for a, b in edges),
        "needed_for_acceptance": sorted(needed),
    }


def _phase_clock(
    plan: list[dict], clock: Callable[[], float], stop: threading.Event
) -> Iterator[tuple[dict, threading.Event]]:
    """Each phase with an event set at its end (on ``clock``) or when ``stop`` is set."""
    for phase in plan:
        ends = threading.Event()

        def watch(end_s: float = phase["end_s"], ends: threading.Event = ends) -> None:
            while not stop.is_set() and clock() < end_s:
                stop.wait(min(0.05, max(0.0, end_s - clock())))
            ends.set()

        threading.Thread(target=watch, name="phase-clock", daemon=True).start()
        yield phase, ends
        if stop.is_set():
            return


def _drive(handlers: dict, config: SampleConfig, plan, clock, stop, current: dict) -> None:
    stream = storefront.commands(config.seed)
    for phase, ends in _phase_clock(plan, clock, stop):
        current["phase"] = phase["name"]
        storefront.run_load(handlers, config.rate * phase["load"], config.seed, ends, stream=stream)
        ends.wait()


def _events_handlers(shop: Shop, ledger: Ledger, current: dict) -> dict:
    def place(order: dict) -> None:
        shop.client.delete(order_view.VIEW_PREFIX + order["order_id"])  # an earlier run with this seed had it too
        phase, placed = current["phase"], time.time_ns()
        shop.orders.place_order(order)
        ledger.placed(order["order_id"], phase, placed, time.time_ns(), None)

    shop.notifications.on_order_shipped = ledger.done
    return {**shop.handlers(), storefront.PLACE_ORDER: place}


def _sync_handlers(shop: SyncShop, ledger: Ledger, current: dict) -> dict:
    def place(order: dict) -> None:
        phase, placed = current["phase"], time.time_ns()  # the phase it was placed in, not the one it ended in
        verdict = shop.place_order(order)
        answered = time.time_ns()
        outcome = {checkout.ACCEPTED: SHIPPED, checkout.DECLINED: DECLINED}.get(verdict.status, FAILED)
        accepted = answered if outcome == SHIPPED else None
        ledger.placed(order["order_id"], phase, placed, accepted, outcome, verdict.reason)

    return {**shop.handlers(), storefront.PLACE_ORDER: place}


def _settle_events(shop: Shop, ledger: Ledger) -> None:
    """After the drain: each event-driven order's end, read from the shop's own order view."""
    for order_id, entry in ledger.orders.items():
        status = order_view.order_status(shop.client, order_id).get("status", "")
        entry["outcome"] = VIEW_OUTCOMES.get(status, LOST)
        if entry["outcome"] != SHIPPED:
            entry["done_ns"] = None


def sync_gates(injector: faults.FaultInjector) -> dict[str, Gate]:
    """The synchronous shipping's gate: down and slow when the injector's shipping faults say so."""
    group = shipping.SERVICE
    return {group: Gate(down=lambda: injector.crash_due(group), delay_s=lambda: injector.slow_delay_s(group, "http"))}


def run(
    config: SampleConfig,
    variant: str,
    injector: faults.FaultInjector,
    plan: list[dict],
    stop: threading.Event,
    say: Callable[[str], None],
    exporter_factory=None,
) -> dict:
    """Run both shops through the phases; the results (see the module docstring)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    tallies = {SYNC: SpanTally(), EVENTS: SpanTally()}  # the same order ids on both sides: a tally each
    ledgers = {SYNC: Ledger(SYNC), EVENTS: Ledger(EVENTS)}
    streams = (shipping.SERVICE,) if variant == STREAM else ()
    if variant == STREAM:  # what an earlier, interrupted run left unread would ship orders of the same ids
        with redis.Redis.from_url(config.redis_url) as client:
            client.delete(*(stream_key(c) for c in shipping.CHANNELS))
    sync_shop = SyncShop(config, exporter_factory, sync_gates(injector))
    events_shop = Shop(config, exporter_factory, faults=injector, stream_groups=streams)
    for side, shop in ((SYNC, sync_shop), (EVENTS, events_shop)):
        for provider in shop.providers.values():
            if hasattr(provider, "add_span_processor"):  # not the no-op provider of a run without tracing
                provider.add_span_processor(tallies[side])
    started_ns = time.time_ns() - int(injector.elapsed_s() * 1e9)
    with sync_shop, events_shop:
        currents = {SYNC: {"phase": plan[0]["name"]}, EVENTS: {"phase": plan[0]["name"]}}
        handlers = {
            SYNC: _sync_handlers(sync_shop, ledgers[SYNC], currents[SYNC]),
            EVENTS: _events_handlers(events_shop, ledgers[EVENTS], currents[EVENTS]),
        }
        loads = [
            threading.Thread(
                target=_drive, args=(handlers[side], config, plan, injector.elapsed_s, stop, currents[side])
            )
            for side in (SYNC, EVENTS)
        ]
        for load in loads:
            load.start()
        while any(load.is_alive() for load in loads):
            loads[0].join(1.0)
            say(_progress(injector.elapsed_s(), currents[EVENTS]["phase"], ledgers))
        events_shop.release_held()
        if not stop.is_set():
            events_shop.wait_idle(DRAIN_TIMEOUT_S)
        _settle_events(events_shop, ledgers[EVENTS])
    return {
        "variant": variant,
        "started_ns": started_ns,
        "phases": plan,
        "rate": config.rate,
        "seed": config.seed,
        "sides": {
            side: {"orders": list(ledger.orders.values()), "complexity": complexity(tallies[side].spans, ledger.orders)}
            for side, ledger in ledgers.items()
        },
    }


def _progress(elapsed: float, phase: str, ledgers: dict[str, Ledger]) -> str:
    counts = ", ".join(f"{side} {len(ledger.orders)} orders" for side, ledger in ledgers.items())
    return f"t={elapsed:5.1f}s phase={phase} {counts}"


def write(results: dict, path: str | Path) -> None:
    """Write the results as one JSON document (to a temporary name first: a reader never sees half)."""
    target = Path(path)
    partial = target.with_suffix(target.suffix + ".partial")
    partial.write_text(json.dumps(results, separators=(",", ":")), encoding="utf-8")
    partial.replace(target)
