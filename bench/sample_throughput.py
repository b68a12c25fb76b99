"""Sample system throughput: events/s through orders -> inventory with tracing on and off.

Both runs use the same Redis, seed and event count in one process run; tracing on exports through
the real BatchSpanProcessor to an exporter that drops the spans, so the figure is the cost of the
instrumentation itself, not of a collector.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from sample_system.config import load_config
from sample_system.shop import Shop
from sample_system.storefront import drive

EVENTS = 3000
ROUNDS = 3


class _DropExporter(SpanExporter):
    def export(self, spans: Sequence) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def events_per_second(redis_url: str, tracing: bool, events: int = EVENTS) -> float:
    config = load_config({"REDIS_URL": redis_url, "SAMPLE_TRACING": "on" if tracing else "off"})
    with Shop(config, lambda: _DropExporter()) as shop:
        consumer = shop.consumers[0]
        started = time.perf_counter()
        drive(shop.orders.place_order, rate=0, seed=1, stop=threading.Event(), limit=events)
        while consumer.processed < events:
            time.sleep(0.001)
        return events / (time.perf_counter() - started)


def main(redis_url: str) -> None:
    best = {True: 0.0, False: 0.0}
    for _ in range(ROUNDS):  # interleaved, best of N: the machine is shared and noisy
        for tracing in (False, True):
            best[tracing] = max(best[tracing], events_per_second(redis_url, tracing))
    print("sample system throughput (orders -> inventory, one process, best of 3)")
    print(f"  tracing off (baseline): {best[False]:10,.0f} events/s")
    print(f"  tracing on:             {best[True]:10,.0f} events/s")
    print(f"  ratio on/off:           {best[True] / best[False]:10.2f}")
