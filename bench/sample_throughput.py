"""Sample shop throughput: events/s through the order flow with tracing on, with tracing off, and the
ceiling of a bare redis-py publish/subscribe loop carrying the same messages on the same Redis.

The order flow is the whole shop in one process (orders -> inventory -> payments -> shipping ->
notifications, with order-view and accounts following), placing orders flat out. Its figure is
events PUBLISHed per second from the first order until the last consumer went quiet. Tracing on
exports through the real BatchSpanProcessor to an exporter that drops the spans, so the figure is
the cost of the instrumentation, not of a collector. The bare loop publishes the very payloads the
flow produced (captured by a subscriber in an untimed pass) from one thread; the ceiling has one plain
subscriber per consumer group on that group's channels (the flow's fan-out, nothing done per message),
and the single-subscriber loop is printed beside it.
Rounds are interleaved and the best of each is kept: the machine is shared and noisy.
Run: ``python -m bench.sample_throughput [--orders N] [--rounds R]`` with REDIS_URL set.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence

import redis
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from sample_system.config import load_config
from sample_system.shop import Shop
from sample_system.storefront import drive

ORDERS = 300
ROUNDS = 3
QUIET_S = 0.3  # no delivery for this long = the flow has finished
GOAL_TRACING_COST = 0.25
GOAL_OF_CEILING = 1 / 3


class _DropExporter(SpanExporter):
    def export(self, spans: Sequence) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _finish_time(shop: Shop) -> float:
    """When the last delivery happened (perf_counter), once nothing has moved for QUIET_S."""
    last, changed = shop.deliveries(), time.perf_counter()
    while time.perf_counter() - changed < QUIET_S:
        time.sleep(0.005)
        now = shop.deliveries()
        if now != last:
            last, changed = now, time.perf_counter()
    return changed


def flow_rate(redis_url: str, tracing: bool, orders: int, seed: int) -> tuple[float, float, int]:
    """(events/s, events per CPU-second of this process, events) through the order flow."""
    config = load_config({"REDIS_URL": redis_url, "SAMPLE_TRACING": "on" if tracing else "off", "SAMPLE_SEED": "1"})
    with Shop(config, lambda: _DropExporter()) as shop:
        started, cpu = time.perf_counter(), time.process_time()
        drive(shop.orders.place_order, rate=0, seed=seed, stop=threading.Event(), limit=orders)
        finished = _finish_time(shop)
        cpu = time.process_time() - cpu
        return shop.published() / (finished - started), shop.published() / cpu, shop.published()


class _Capture:
    """Every message on shop.*, as published, for the bare loop to replay."""

    def __init__(self, redis_url: str):
        self._pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe("shop.*")
        self._pubsub.get_message(timeout=1.0)
        self.messages: list[tuple[bytes, bytes]] = []

    def drain(self) -> list[tuple[bytes, bytes]]:
        while message := self._pubsub.get_message(timeout=0.5):
            if message["type"] == "pmessage":
                self.messages.append((message["channel"], message["data"]))
        self._pubsub.close()
        return self.messages


def capture_messages(redis_url: str, orders: int) -> list[tuple[bytes, bytes]]:
    capture = _Capture(redis_url)
    flow_rate(redis_url, False, orders, seed=99)
    return capture.drain()


def _subscriber(redis_url: str, channels: list[bytes], expected: int, done: threading.Barrier) -> threading.Thread:
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*channels)
    for _ in channels:
        pubsub.get_message(timeout=1.0)

    def run() -> None:
        received = 0
        while received < expected:
            if pubsub.get_message(timeout=1.0):
                received += 1
        pubsub.close()
        client.close()
        done.wait()

    return threading.Thread(target=run, daemon=True)


def bare_rate(redis_url: str, messages: list[tuple[bytes, bytes]], groups: dict[str, list[str]]) -> tuple[float, float]:
    """(events/s, events per CPU-second) of one publisher passing ``messages`` to one plain subscriber per
    group in ``groups`` (group -> its channels), each only reading: Pub/Sub with nothing else."""
    subscriptions = [[c.encode() for c in channels] for channels in groups.values()]
    done = threading.Barrier(len(subscriptions) + 1)
    threads = [
        _subscriber(redis_url, channels, sum(1 for channel, _ in messages if channel in channels), done)
        for channels in subscriptions
    ]
    client = redis.Redis.from_url(redis_url)
    for thread in threads:
        thread.start()
    started, cpu = time.perf_counter(), time.process_time()
    for channel, payload in messages:
        client.publish(channel, payload)
    done.wait(timeout=60)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    client.close()
    return len(messages) / elapsed, len(messages) / cpu


def shop_groups(redis_url: str) -> dict[str, list[str]]:
    """The shop's consumer groups and their channels."""
    with Shop(load_config({"REDIS_URL": redis_url, "SAMPLE_TRACING": "off"}), lambda: _DropExporter()) as shop:
        return {consumer.group: consumer.channels for consumer in shop.consumers}


def main(redis_url: str, orders: int = ORDERS, rounds: int = ROUNDS) -> dict:
    messages = capture_messages(redis_url, orders)
    groups = shop_groups(redis_url)
    single = {"one subscriber": sorted({channel.decode() for channel, _ in messages})}
    best = {"bare": 0.0, "bare_single": 0.0, "off": 0.0, "on": 0.0}
    per_cpu = dict.fromkeys(best, 0.0)
    events = 0
    for round_number in range(rounds):
        for key, topology in (("bare", groups), ("bare_single", single)):
            rate, cpu_rate = bare_rate(redis_url, messages, topology)
            best[key], per_cpu[key] = max(best[key], rate), max(per_cpu[key], cpu_rate)
        for tracing in (False, True):
            rate, cpu_rate, events = flow_rate(redis_url, tracing, orders, seed=round_number + 1)
            key = "on" if tracing else "off"
            best[key], per_cpu[key] = max(best[key], rate), max(per_cpu[key], cpu_rate)
    cost = 1 - best["on"] / best["off"]
    of_ceiling = best["on"] / best["bare"]
    print(f"sample order flow: {orders} orders = {events:,} events, whole shop in one process, best of {rounds}")
    print(
        f"  bare redis-py pub/sub, one subscriber: {best['bare_single']:10,.0f} events/s  ({len(messages):,} messages)"
    )
    print(
        f"  bare redis-py pub/sub, same fan-out (ceiling): {best['bare']:,.0f} events/s  "
        f"(one plain subscriber per consumer group, {len(groups)} groups)"
    )
    print(
        f"  order flow, tracing off (baseline):   {best['off']:10,.0f} events/s  "
        f"({best['off'] / best['bare']:.2f} of ceiling)"
    )
    print(
        f"  order flow, tracing on:               {best['on']:10,.0f} events/s  ({of_ceiling:.2f} of ceiling, "
        f"goal >= {GOAL_OF_CEILING:.2f})"
    )
    print(
        f"  ratio on/off:                         {best['on'] / best['off']:10.2f}  (tracing costs {cost:.0%}, "
        f"goal <= {GOAL_TRACING_COST:.0%})"
    )
    print(
        f"  per CPU-second of this process (steadier on a shared machine): bare {per_cpu['bare']:,.0f}, "
        f"off {per_cpu['off']:,.0f}, on {per_cpu['on']:,.0f} events; on/off {per_cpu['on'] / per_cpu['off']:.2f}, "
        f"on/bare {per_cpu['on'] / per_cpu['bare']:.2f}"
    )
    return {**best, "tracing_cost": cost, "of_ceiling": of_ceiling, "events": events, "per_cpu": per_cpu}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.sample_throughput", description=__doc__)
    parser.add_argument("--orders", type=int, default=ORDERS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("REDIS_URL is not set: run benchmarks through ./run bench")
    main(os.environ["REDIS_URL"], args.orders, args.rounds)
