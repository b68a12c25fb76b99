"""storefront: the load generator. Places orders at a steady rate, deterministic for a seed."""

from __future__ import annotations

import random
import threading
import time

SKUS = ("sku-apple", "sku-pear", "sku-plum", "sku-fig", "sku-kiwi")


def order_stream(seed: int):
    """An endless, reproducible sequence of orders."""
    rng = random.Random(seed)
    number = 0
    while True:
        number += 1
        lines = [{"sku": rng.choice(SKUS), "qty": rng.randint(1, 3)} for _ in range(rng.randint(1, 3))]
        yield {
            "order_id": f"order-{seed}-{number:06d}",
            "user_id": f"user-{rng.randint(1, 50):03d}",
            "lines": lines,
            "total_cents": sum(line["qty"] * rng.randint(100, 900) for line in lines),
        }


def drive(place, rate: float, seed: int, stop: threading.Event, limit: int | None = None) -> int:
    """Call ``place(order)`` ``rate`` times a second (as fast as possible if rate is 0)."""
    interval = 1.0 / rate if rate > 0 else 0.0
    started = time.monotonic()
    count = 0
    for order in order_stream(seed):
        if stop.is_set() or (limit is not None and count >= limit):
            break
        place(order)
        count += 1
        if interval:
            stop.wait(max(0.0, started + count * interval - time.monotonic()))
    return count
