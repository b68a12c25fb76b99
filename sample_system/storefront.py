"""storefront: the load generator. Signs users up, tops up wallets and places orders at a steady
rate with periodic bursts, the same commands in the same order for a given seed."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping

import redis

log = logging.getLogger(__name__)

SKUS = ("sku-apple", "sku-pear", "sku-plum", "sku-fig", "sku-kiwi")
PRICES_CENTS = {"sku-apple": 120, "sku-pear": 150, "sku-plum": 90, "sku-fig": 310, "sku-kiwi": 75}
SIGN_UP_SHARE = 0.08
TOP_UP_SHARE = 0.05
OUTAGE_PAUSE_S = 0.2  # while Redis is unreachable, wait this long between commands
PLACE_ORDER = "place_order"
SIGN_UP = "sign_up"
TOP_UP = "top_up"

Command = tuple[str, dict]


def _order(rng: random.Random, seed: int, number: int, user_id: str) -> dict:
    lines = []
    for _ in range(rng.randint(1, 3)):
        sku = rng.choice(SKUS)
        lines.append({"sku": sku, "qty": rng.randint(1, 3), "unit_price_cents": PRICES_CENTS[sku]})
    return {
        "order_id": f"order-{seed}-{number:06d}",
        "user_id": user_id,
        "lines": lines,
        "total_cents": sum(line["qty"] * line["unit_price_cents"] for line in lines),
    }


def order_stream(seed: int) -> Iterator[dict]:
    """An endless, reproducible sequence of orders (from a pool of 50 users)."""
    rng = random.Random(seed)
    number = 0
    while True:
        number += 1
        yield _order(rng, seed, number, f"user-{seed}-{rng.randint(1, 50):03d}")


def commands(seed: int) -> Iterator[Command]:
    """An endless, reproducible mix of sign-ups, top-ups and orders; orders come from signed-up users."""
    rng = random.Random(seed)
    users: list[str] = []
    orders = 0
    while True:
        roll = rng.random()
        if not users or roll < SIGN_UP_SHARE:
            users.append(f"user-{seed}-{len(users) + 1:04d}")
            yield SIGN_UP, {"user_id": users[-1]}
        elif roll < SIGN_UP_SHARE + TOP_UP_SHARE:
            yield TOP_UP, {"user_id": rng.choice(users), "amount_cents": rng.choice((1000, 2000, 5000))}
        else:
            orders += 1
            yield PLACE_ORDER, _order(rng, seed, orders, rng.choice(users))


def _pace(stop: threading.Event, rate: float, burst_every_s: float, burst_size: int) -> Iterator[None]:
    """Yields once per command to issue: ``rate`` a second, plus ``burst_size`` at once every ``burst_every_s``."""
    interval = 1.0 / rate if rate > 0 else 0.0
    started = time.monotonic()
    count = bursts = 0
    while not stop.is_set():
        if burst_every_s and burst_size and time.monotonic() - started >= (bursts + 1) * burst_every_s:
            bursts += 1
            for _ in range(burst_size):
                yield
        yield
        count += 1
        if interval:
            stop.wait(max(0.0, started + count * interval - time.monotonic()))


def run_load(
    handlers: Mapping[str, Callable[[dict], object]],
    rate: float,
    seed: int,
    stop: threading.Event,
    limit: int | None = None,
    burst_every_s: float = 0.0,
    burst_size: int = 0,
    stream: Iterator[Command] | None = None,
) -> Counter[str]:
    """Issue the seeded command mix to ``handlers`` (by command name) until ``stop`` or ``limit``.

    ``stream`` continues a sequence from ``commands(seed)`` that an earlier load began (default: a new one).
    """
    issued: Counter[str] = Counter()
    stream = commands(seed) if stream is None else stream
    for _ in _pace(stop, rate, burst_every_s, burst_size):
        if limit is not None and issued.total() >= limit:
            break
        name, command = next(stream)
        try:
            handlers[name](command)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if not issued["unreachable"]:
                log.warning("Redis unreachable (%s); commands fail until it is back", exc)
            issued["unreachable"] += 1
            stop.wait(OUTAGE_PAUSE_S)
            continue
        if issued["unreachable"]:
            log.warning("Redis is back after %d failed commands", issued["unreachable"])
            issued["failed"] += issued.pop("unreachable")
        issued[name] += 1
    return issued


def drive(place: Callable[[dict], object], rate: float, seed: int, stop: threading.Event, limit: int | None = None):
    """Call ``place(order)`` ``rate`` times a second (as fast as possible if rate is 0); returns the count."""
    count = 0
    orders = order_stream(seed)
    for _ in _pace(stop, rate, 0.0, 0):
        if limit is not None and count >= limit:
            break
        place(next(orders))
        count += 1
    return count
