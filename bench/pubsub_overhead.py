"""eventscope-redis overhead: a plain redis-py publish + subscribe loop, bare and instrumented, in one run,
and the CPU per message the library adds beside the OpenTelemetry SDK's own floor.

This process PUBLISHes N JSON payloads (an order, about 100 bytes) on one channel; a subscriber process
reads them with ``get_message`` (a publishing and a subscribing service). Throughput is messages per second
from the first PUBLISH to the last message read; CPU per message is both processes' CPU time over N.
Instrumented runs export through the real BatchSpanProcessor to an exporter that drops the spans, so the
figure is the instrumentation's cost, not a collector's.

A run with a no-op tracer provider shows the library's own work (wire form, wrappers) apart from the SDK's.
The SDK floor is what any instrumentation of this loop must pay per message with the same provider and
processor: a PRODUCER span started, its context injected into a carrier, ended; the context extracted and
a CONSUMER span started (parent and link) and ended. The library's added CPU per message (instrumented
minus bare) is printed as a multiple of that floor, and beside the floor with the attributes docs/events.md
asks for (which the SDK checks one by one), so the library's own code shows apart from the SDK's.
The floor is measured in a tight loop, as the issue defines it; the same calls also cost more inside the
pub/sub loop (between socket calls, caches are cold), so they are made there too, by hand around a bare
publish and read (no wire form, no wrappers), and that run's CPU over bare is printed beside the floor,
once without attributes and once with the contract's: the throughput of that last run is the most any
instrumentation making the spans docs/events.md asks for can reach, as a fraction of bare.
Rounds are interleaved and the best of each kept.
Run: ``python -m bench.pubsub_overhead [--messages N] [--rounds R]`` with REDIS_URL set.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence

import redis
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from eventscope_redis import RedisPubSubInstrumentor, attributes

MESSAGES = 5_000
ROUNDS = 5  # the machine is shared and noisy: more chances for each figure to be measured in a quiet moment
CHANNEL = "bench.orders"
GOAL_ADDED_OVER_FLOOR = 1.5
GOAL_OF_BARE = 0.5
HAND = {"hand": False, "hand_attributes": True}  # a floor made by hand in the loop -> with the contract's attributes
PAYLOAD = json.dumps(
    {"order_id": "o-000123", "user_id": "u-42", "lines": [{"sku": "sku-7", "qty": 2}], "total_cents": 4200}
).encode()


class _DropExporter(SpanExporter):
    def export(self, spans: Sequence) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def provider() -> TracerProvider:
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    # a queue that holds a whole run: a starved export thread must not turn spans into drops (less work)
    tracer_provider.add_span_processor(BatchSpanProcessor(_DropExporter(), max_queue_size=4 * MESSAGES))
    return tracer_provider


def _instrumented(mode: str) -> tuple[RedisPubSubInstrumentor | None, trace.TracerProvider | None]:
    """Instrument for ``mode``: ``bare`` (not at all), ``noop`` (a no-op provider: the library's own work
    only), ``sdk`` (the SDK provider), or one of HAND (not instrumented; an SDK provider for the floor's
    spans, made by hand)."""
    if mode == "bare":
        return None, None
    if mode in HAND:
        return None, provider()
    tracer_provider = provider() if mode == "sdk" else trace.NoOpTracerProvider()
    instrumentor = RedisPubSubInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    return instrumentor, tracer_provider


def _carrier(spans: FloorSpans) -> dict:
    """A producer's context, as a message would carry it (the bare payload carries none)."""
    span, carrier = spans.send()
    span.end()
    return carrier


def _subscribe(redis_url: str, messages: int, mode: str, ready, results) -> None:
    """The subscriber process: reads ``messages`` with get_message, then reports (end time, CPU seconds)."""
    _, tracer_provider = _instrumented(mode)
    by_hand = FloorSpans(tracer_provider, HAND[mode]) if mode in HAND else None
    carrier = _carrier(by_hand) if by_hand is not None else {}
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    pubsub.get_message(timeout=1.0)
    cpu = time.process_time()
    ready.set()
    received = 0
    while received < messages:
        if pubsub.get_message(timeout=1.0) is not None:
            received += 1
            if by_hand is not None:
                by_hand.process(carrier)
    pubsub.get_message(timeout=0.0)  # ends the last delivery
    results.put((time.time(), time.process_time() - cpu))
    pubsub.close()
    if isinstance(tracer_provider, TracerProvider):
        tracer_provider.shutdown()


def pubsub_loop(redis_url: str, messages: int, mode: str = "bare") -> tuple[float, float, float]:
    """(messages/s, publisher's and subscriber's CPU seconds per message): this process publishes, a child
    subscribes, as a publishing service and a subscribing service would; both instrumented the same way."""
    spawn = multiprocessing.get_context("spawn")
    ready, results = spawn.Event(), spawn.Queue()
    child = spawn.Process(target=_subscribe, args=(redis_url, messages, mode, ready, results))
    child.start()
    ready.wait(timeout=60)
    instrumentor, tracer_provider = _instrumented(mode)
    by_hand = FloorSpans(tracer_provider, HAND[mode]) if mode in HAND else None
    client = redis.Redis.from_url(redis_url)
    try:
        started, cpu = time.time(), time.process_time()
        if by_hand is None:
            for _ in range(messages):
                client.publish(CHANNEL, PAYLOAD)
        else:
            for _ in range(messages):
                span, _carrier = by_hand.send()
                client.publish(CHANNEL, PAYLOAD)
                span.end()
        cpu = time.process_time() - cpu
        finished, subscriber_cpu = results.get(timeout=120)
    finally:
        client.close()
        if instrumentor is not None:
            instrumentor.uninstrument()
        if isinstance(tracer_provider, TracerProvider):
            tracer_provider.shutdown()
        child.join(timeout=30)
    return messages / (finished - started), cpu / messages, subscriber_cpu / messages


class FloorSpans:
    """The SDK work of the floor, written once: the spans two messaging services must make per message."""

    def __init__(self, tracer_provider: TracerProvider, with_attributes: bool = False):
        self.tracer = tracer_provider.get_tracer("bench.floor")
        self.propagator = TraceContextTextMapPropagator()
        event = {"specversion": "1.0", "id": "0192-bench", "source": "/bench/1", "type": CHANNEL, "sequence": "1"}
        self.produced = attributes.producer(CHANNEL, "publish", event, len(PAYLOAD)) if with_attributes else None
        self.consumed = attributes.consumer(CHANNEL, "bench", event, len(PAYLOAD), None) if with_attributes else None

    def send(self) -> tuple[trace.Span, dict]:
        """A PRODUCER span started and its context injected into a carrier; the caller ends it."""
        carrier: dict = {}
        span = self.tracer.start_span("send bench.orders", kind=SpanKind.PRODUCER, attributes=self.produced)
        self.propagator.inject(carrier, trace.set_span_in_context(span))
        return span, carrier

    def process(self, carrier: dict) -> None:
        """The context extracted, a CONSUMER span started with it as parent and link, and ended."""
        context = self.propagator.extract(carrier)
        link = Link(trace.get_current_span(context).get_span_context())
        self.tracer.start_span(
            "process bench.orders", context=context, kind=SpanKind.CONSUMER, links=[link], attributes=self.consumed
        ).end()


def sdk_floor(messages: int, with_attributes: bool = False) -> float:
    """CPU seconds per message of the SDK work two messaging spans need, with the same processor; with
    ``with_attributes``, each span also carries the attributes docs/events.md asks for (the SDK checks
    every value, and that costs more than the span itself)."""
    tracer_provider = provider()
    spans = FloorSpans(tracer_provider, with_attributes)
    cpu = time.process_time()
    for _ in range(messages):
        producer, carrier = spans.send()
        producer.end()
        spans.process(carrier)
    cpu = time.process_time() - cpu
    tracer_provider.shutdown()
    return cpu / messages


def main(redis_url: str, messages: int = MESSAGES, rounds: int = ROUNDS) -> dict:
    modes = ("bare", "noop", "sdk", *HAND)
    rate = dict.fromkeys(modes, 0.0)
    cpu = dict.fromkeys((*modes, "floor", "floor_attributes"), float("inf"))
    sides = {mode: [float("inf"), float("inf")] for mode in modes}  # publisher, subscriber
    for _ in range(rounds):
        for key in modes:
            round_rate, publisher, subscriber = pubsub_loop(redis_url, messages, key)
            rate[key], cpu[key] = max(rate[key], round_rate), min(cpu[key], publisher + subscriber)
            sides[key] = [min(sides[key][0], publisher), min(sides[key][1], subscriber)]
        cpu["floor"] = min(cpu["floor"], sdk_floor(messages))
        cpu["floor_attributes"] = min(cpu["floor_attributes"], sdk_floor(messages, with_attributes=True))
    added = cpu["sdk"] - cpu["bare"]
    of_bare = rate["sdk"] / rate["bare"]
    over_floor = added / cpu["floor"]
    us = 1e6
    print(
        f"pub/sub overhead: {messages:,} messages of {len(PAYLOAD)} bytes, "
        f"one publisher process, one subscriber process, best of {rounds}"
    )
    print(f"  bare redis-py (baseline):     {rate['bare']:10,.0f} msg/s  {cpu['bare'] * us:7.1f} us CPU/msg")
    print(
        "  per side (publisher + subscriber, us CPU/msg): "
        + ", ".join(f"{mode} {sides[mode][0] * us:.1f} + {sides[mode][1] * us:.1f}" for mode in modes)
    )
    print(
        f"  instrumented, no-op provider: {rate['noop']:10,.0f} msg/s  {cpu['noop'] * us:7.1f} us CPU/msg"
        f"  (the library's own work: {(cpu['noop'] - cpu['bare']) * us:.1f} us/msg)"
    )
    print(
        f"  instrumented, SDK provider:   {rate['sdk']:10,.0f} msg/s  {cpu['sdk'] * us:7.1f} us CPU/msg"
        f"  ({of_bare:.2f} of bare, goal >= {GOAL_OF_BARE:.2f})"
    )
    for mode, what in (("hand", "2 spans, inject, extract, link"), ("hand_attributes", "the same, with attributes")):
        print(
            f"  SDK floor by hand ({what}): {rate[mode]:8,.0f} msg/s  {cpu[mode] * us:7.1f} us CPU/msg"
            f"  ({rate[mode] / rate['bare']:.2f} of bare: the most any instrumentation making these spans reaches)"
        )
    print(f"  SDK floor (2 spans, inject, extract, link):  {cpu['floor'] * us:7.1f} us CPU/msg")
    print(f"  SDK floor with the contract's attributes:    {cpu['floor_attributes'] * us:7.1f} us CPU/msg")
    for mode, floor in (("hand", "floor"), ("hand_attributes", "floor_attributes")):
        in_loop = cpu[mode] - cpu["bare"]
        print(
            f"  {mode.replace('_', ' with ')} in the loop: {in_loop * us:7.1f} us CPU/msg over bare "
            f"= {in_loop / cpu[floor]:.2f} x its tight-loop floor; the library adds {added / in_loop:.2f} x this"
        )
    print(
        f"  added by the library:         {added * us:7.1f} us CPU/msg = {over_floor:.2f} x the SDK floor "
        f"(goal <= {GOAL_ADDED_OVER_FLOOR:.1f}); {added / cpu['floor_attributes']:.2f} x the floor with attributes"
    )
    return {"rate": rate, "cpu": cpu, "of_bare": of_bare, "added_over_floor": over_floor}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.pubsub_overhead", description=__doc__)
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("REDIS_URL is not set: run benchmarks through ./run bench")
    main(os.environ["REDIS_URL"], args.messages, args.rounds)
