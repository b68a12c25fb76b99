"""The Compare page's pure parts: from a ``sync_vs_events`` run's results, one row per line of the comparison.

The results (sample_system.comparison) list every order of each side with the phase it was placed in,
when it was accepted and done, and how it ended, and tally each side's spans by order. Every figure
below is computed from them; none is typed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

SYNC, EVENTS = "sync", "events"
SHIPPED, DECLINED, FAILED, LOST = "shipped", "declined", "failed", "lost"
DOWN, BACK = "shipping_down", "shipping_back"
ONE_X, TWO_X = "steady", "burst"
COLUMNS = ("aspect", "measure")
SIDE_TITLES = {SYNC: "Synchronous (HTTP)", "pubsub": "Event-driven (Pub/Sub)", "stream": "Event-driven (Redis Stream)"}


ORDER_FIELDS = ("order_id", "phase", "placed_ns", "accepted_ns", "done_ns", "outcome")
SHAPE_FIELDS = ("spans_per_order", "traces_per_order", "services", "edges", "needed_for_acceptance")


def problem(results: object) -> str | None:
    """What makes a results document unusable for the table (None when it is usable)."""
    if not isinstance(results, dict):
        return "not a JSON object"
    phases = results.get("phases")
    if not isinstance(results.get("started_ns"), int) or not isinstance(phases, list):
        return "no start time or no phases"
    names = {p.get("name") for p in phases if isinstance(p, dict)}
    if not {DOWN, ONE_X, TWO_X} <= names:
        return f"the phases lack one of {DOWN}, {ONE_X}, {TWO_X}"
    sides = results.get("sides")
    if not isinstance(sides, dict) or not {SYNC, EVENTS} <= set(sides):
        return "the sync and events sides are not both there"
    for side in (SYNC, EVENTS):
        orders, shape = sides[side].get("orders"), sides[side].get("complexity")
        if not isinstance(orders, list) or not all(isinstance(o, dict) and set(ORDER_FIELDS) <= set(o) for o in orders):
            return f"an order of the {side} side lacks one of {', '.join(ORDER_FIELDS)}"
        if not isinstance(shape, dict) or not set(SHAPE_FIELDS) <= set(shape):
            return f"the {side} side's span tally lacks one of {', '.join(SHAPE_FIELDS)}"
    return None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile ``q`` (0..100) of ``values``; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def accepted_ms(orders: Iterable[dict]) -> list[float]:
    """Placed to accepted, per accepted order."""
    return [(o["accepted_ns"] - o["placed_ns"]) / 1e6 for o in orders if o.get("accepted_ns") is not None]


def done_ms(orders: Iterable[dict]) -> list[float]:
    """Placed to every side effect done (the shipping email sent), per shipped order."""
    return [(o["done_ns"] - o["placed_ns"]) / 1e6 for o in orders if o.get("done_ns") is not None]


def window_ns(results: dict, phase: str) -> tuple[int, int]:
    """When a phase began and ended, in ns since the epoch."""
    found = next(p for p in results["phases"] if p["name"] == phase)
    start = results["started_ns"]
    return start + int(found["start_s"] * 1e9), start + int(found["end_s"] * 1e9)


def placed_in(orders: Iterable[dict], phase: str) -> list[dict]:
    return [o for o in orders if o["phase"] == phase]


def outage(results: dict, side: str) -> dict[str, int]:
    """Orders placed while shipping was down: placed, accepted, declined (stock or wallet said no), failed (a
    service did not answer), delayed (shipped once it was back), lost (paid, never shipped)."""
    orders = placed_in(results["sides"][side]["orders"], DOWN)
    _, back_ns = window_ns(results, DOWN)
    return {
        "placed": len(orders),
        "accepted": sum(o.get("accepted_ns") is not None for o in orders),
        "declined": sum(o["outcome"] == DECLINED for o in orders),
        "failed": sum(o["outcome"] == FAILED for o in orders),
        "delayed": sum(o["outcome"] == SHIPPED and o["done_ns"] >= back_ns for o in orders),
        "lost": sum(o["outcome"] == LOST for o in orders),
    }


def catch_up_s(results: dict, side: str) -> float:
    """From shipping's return until the last order placed before it was done (0 when nothing waited)."""
    _, back_ns = window_ns(results, DOWN)
    waited = [o["done_ns"] for o in results["sides"][side]["orders"] if o["placed_ns"] < back_ns and o.get("done_ns")]
    return max(0.0, (max(waited, default=back_ns) - back_ns) / 1e9)


def throughput(results: dict, side: str, phase: str) -> tuple[float, float]:
    """(orders placed per second, orders accepted per second) over one phase."""
    start, end = window_ns(results, phase)
    orders = placed_in(results["sides"][side]["orders"], phase)
    seconds = max((end - start) / 1e9, 1e-9)
    accepted = sum(o.get("accepted_ns") is not None for o in orders)
    return len(orders) / seconds, accepted / seconds


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _names(names: Sequence[str]) -> str:
    return f"{len(names)}: {', '.join(names)}" if names else "0"


def _figures(results: dict, side: str) -> list[tuple[str, str, str]]:
    orders = results["sides"][side]["orders"]
    shape = results["sides"][side]["complexity"]
    accepted, done = accepted_ms(orders), done_ms(orders)
    lost = outage(results, side)
    steady, burst = throughput(results, side, ONE_X), throughput(results, side, TWO_X)
    return [
        ("Latency", "order accepted, p50", _ms(percentile(accepted, 50))),
        ("Latency", "order accepted, p95", _ms(percentile(accepted, 95))),
        ("Latency", "all side effects done, p50", _ms(percentile(done, 50))),
        ("Latency", "all side effects done, p95", _ms(percentile(done, 95))),
        ("Coupling", "services that must be up to accept an order", _names(shape["needed_for_acceptance"])),
        ("Coupling", "edges in the flow graph (service to service)", str(len(shape["edges"]))),
        ("Fault tolerance", "orders placed while shipping was down", str(lost["placed"])),
        ("Fault tolerance", "accepted", str(lost["accepted"])),
        ("Fault tolerance", "declined (stock or wallet said no)", str(lost["declined"])),
        ("Fault tolerance", "failed (a service did not answer)", str(lost["failed"])),
        ("Fault tolerance", "delayed (shipped once shipping was back)", str(lost["delayed"])),
        ("Fault tolerance", "lost (paid, never shipped)", str(lost["lost"])),
        ("Fault tolerance", "catch-up after shipping is back", f"{catch_up_s(results, side):.1f} s"),
        ("Complexity", "spans per order (median)", _number(shape["spans_per_order"])),
        ("Complexity", "traces per order (median)", _number(shape["traces_per_order"])),
        ("Complexity", "services a debugger must open", _names(shape["services"])),
        ("Scalability", "accepted orders/s at 1× load", f"{steady[1]:.1f} of {steady[0]:.1f} placed/s"),
        ("Scalability", "accepted orders/s at 2× load", f"{burst[1]:.1f} of {burst[0]:.1f} placed/s"),
    ]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def table(sync_results: dict, event_results: Sequence[dict]) -> pd.DataFrame:
    """One row per figure: the synchronous side (from ``sync_results``), then each event-driven run's side."""
    rows = [{"aspect": a, "measure": m, SIDE_TITLES[SYNC]: v} for a, m, v in _figures(sync_results, SYNC)]
    for results in event_results:
        title = SIDE_TITLES.get(results.get("variant"), f"Event-driven ({results.get('variant')})")
        for row, (_, _, value) in zip(rows, _figures(results, EVENTS), strict=True):
            row[title] = value
    return pd.DataFrame(rows)


def phases_frame(results: dict) -> pd.DataFrame:
    """The run's phases: name, from, to (seconds), load, and the orders each side placed in it."""
    rows = [
        {
            "phase": p["name"].replace("_", " "),
            "from": f"{p['start_s']:g} s",
            "to": f"{p['end_s']:g} s",
            "load": f"{p['load']:g}×",
            **{SIDE_TITLES[SYNC] if s == SYNC else "event-driven": len(placed_in(v["orders"], p["name"]))
               for s, v in results["sides"].items()},
        }
        for p in results["phases"]
    ]  # fmt: skip
    return pd.DataFrame(rows)
