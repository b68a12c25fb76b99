"""Every fault writes its ground truth, and the truth matches what really happened on the bus and in
the consumers (seen here by a raw PSUBSCRIBE recorder and by the spans, never by the injector)."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections import Counter, defaultdict

import pytest
import redis
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sample_system import faults, truth
from sample_system.config import load_config
from sample_system.deadletters import DeadLetterQueue
from sample_system.shop import Shop, exporter_factory_for
from sample_system.storefront import run_load
from tests.processes import wait_until

pytestmark = pytest.mark.integration


class BusRecorder:
    """Every message on shop.* as Redis delivered it to one plain subscriber, with its arrival time."""

    def __init__(self, redis_url: str):
        self._pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe("shop.*")
        self._pubsub.get_message(timeout=1.0)
        self.messages: list[tuple[str, dict, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.1)
            if message and message["type"] == "pmessage":
                self.messages.append((message["channel"].decode(), json.loads(message["data"]), time.time_ns()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()

    def on(self, channel: str) -> list[dict]:
        return [event for ch, event, _ in self.messages if ch == channel]


def _run(redis_server, tmp_path, fault_flags, commands=40, rate=0.0, seconds=None, **config_env):
    """Run the shop with faults; returns (records from the truth file, injector, shop, spans, recorder)."""
    env = {"REDIS_URL": redis_server.url, "SAMPLE_V1_SHARE": "0", **config_env}
    settings = faults.load_settings({}, fault_flags)
    path = tmp_path / "truth.jsonl"
    injector = faults.FaultInjector(settings, 7, truth.GroundTruth(path))
    memory = InMemorySpanExporter()
    recorder = BusRecorder(redis_server.url)
    stop = threading.Event()
    if seconds:
        threading.Timer(seconds, stop.set).start()
    with Shop(load_config(env), exporter_factory_for(memory), faults=injector) as shop:
        run_load(shop.handlers(), rate=rate, seed=11, stop=stop, limit=None if seconds else commands)
        shop.release_held()
        assert shop.wait_idle(timeout_s=60)
    injector.truth.close()
    recorder.stop()
    records = truth.read(path)
    assert Counter(r["fault"] for r in records) == injector.truth.counts
    for record in records:
        assert set(record) == {
            "fault",
            "event_id",
            "channel",
            "source",
            "partitionkey",
            "sequence",
            "group",
            "time_ns",
            "detail",
        }
    return records, shop, memory.get_finished_spans(), recorder


def _ids(records, fault):
    return [r["event_id"] for r in records if r["fault"] == fault]


def _consumer_spans(spans, group):
    return [s for s in spans if s.kind == SpanKind.CONSUMER and s.attributes["messaging.consumer.group.name"] == group]


def test_duplicate_publish_truth_is_every_id_the_bus_saw_twice(redis_server, tmp_path):
    records, shop, spans, bus = _run(redis_server, tmp_path, ["duplicate_publish:rate=0.3"])
    copies = Counter(event["id"] for event in bus.on("shop.orders"))
    twice = sorted(i for i, n in copies.items() if n == 2)
    assert twice and sorted(_ids(records, "duplicate_publish")) == twice
    assert max(copies.values()) == 2
    for group in ("inventory", "order-view"):
        handled = Counter(
            s.attributes["messaging.message.id"]
            for s in _consumer_spans(spans, group)
            if s.name == "process shop.orders" and s.attributes["eventscope.outcome"] == "processed"
        )
        assert set(handled.values()) == {1}, f"{group} processed an order twice"
        skipped = [
            s for s in _consumer_spans(spans, group) if s.attributes["eventscope.outcome"] == "duplicate_skipped"
        ]
        assert sorted(s.attributes["messaging.message.id"] for s in skipped if s.name == "process shop.orders") == twice
        assert all(s.attributes["eventscope.dedupe.key"].startswith("{sample}:dedupe:") for s in skipped)


def test_reorder_truth_is_every_event_that_arrived_after_a_later_one(redis_server, tmp_path):
    records, _, _, bus = _run(redis_server, tmp_path, ["reorder:rate=0.3,hold=2"])
    highest: dict[tuple, int] = defaultdict(int)
    late = []
    for event in bus.on("shop.orders"):
        stream, sequence = (event["source"], event.get("partitionkey")), int(event["sequence"])
        if sequence < highest[stream]:
            late.append(event["id"])
        highest[stream] = max(highest[stream], sequence)
    assert late and sorted(_ids(records, "reorder")) == sorted(late)


def test_drop_before_broker_truth_is_every_missing_sequence(redis_server, tmp_path):
    records, _, _, bus = _run(redis_server, tmp_path, ["drop_before_broker:rate=0.2,channel=shop.stock"])
    seen: dict[tuple, set[int]] = defaultdict(set)
    for event in bus.on("shop.stock"):
        seen[(event["source"], event["partitionkey"])].add(int(event["sequence"]))
    dropped = {(r["source"], r["partitionkey"], r["sequence"]) for r in records}
    missing = {(src, pk, n) for (src, pk), got in seen.items() for n in range(1, max(got) + 1) if n not in got}
    assert missing and missing == dropped  # a drop is recorded only once a later event of its stream went out
    assert {r["fault"] for r in records} == {"drop_before_broker"}


def test_consumer_crash_truth_is_what_the_bus_had_and_the_group_never_processed(redis_server, tmp_path):
    records, shop, spans, bus = _run(
        redis_server, tmp_path, ["consumer_crash:group=shipping,start_s=1,for_s=1.5"], rate=40, seconds=4
    )
    on_bus = {event["id"] for event in bus.on("shop.payments")}
    processed = {s.attributes["messaging.message.id"] for s in _consumer_spans(spans, "shipping")}
    lost = sorted(_ids(records, "consumer_crash"))
    assert lost and sorted(on_bus - processed) == lost
    assert {r["group"] for r in records} == {"shipping"}
    accounts = {s.attributes["messaging.message.id"] for s in _consumer_spans(spans, "accounts")}
    assert on_bus == accounts  # lost to shipping only


def test_slow_consumer_records_one_activation_per_window(redis_server, tmp_path):
    records, shop, _, _ = _run(
        redis_server,
        tmp_path,
        ["slow_consumer:group=order-view,start_s=0.5,every_s=1.5,for_s=0.5,delay_ms=5"],
        rate=30,
        seconds=3.5,
    )
    windows = [r["detail"]["window"] for r in records]
    assert windows == sorted(set(windows)) and len(windows) >= 2
    assert all(r["event_id"] is None and r["group"] == "order-view" for r in records)


def test_poison_truth_matches_the_dead_letter_queue(redis_server, tmp_path):
    records, shop, spans, _ = _run(redis_server, tmp_path, ["poison_message:rate=0.2"])
    poisoned = set(_ids(records, "poison_message"))
    assert poisoned
    entries = [e for e in DeadLetterQueue(shop.client).entries() if e["event_id"] in poisoned]
    assert sorted((e["event_id"], e["group"]) for e in entries) == sorted(
        (r["event_id"], r["group"]) for r in records if r["fault"] == "dead_letter"
    )
    assert {e["group"] for e in entries} == {"inventory", "order-view"}
    assert all(e["reason"].startswith("schema validation failed") and e["attempts"] == 1 for e in entries)
    dead = [s for s in _consumer_spans(spans, "inventory") if s.attributes["eventscope.outcome"] == "dead_lettered"]
    assert {s.attributes["messaging.message.id"] for s in dead} == poisoned
    assert all("schema validation failed" in s.attributes["eventscope.dead_letter.reason"] for s in dead)
    assert all(s.attributes["eventscope.dead_letter.queue"] == "{sample}:dlq" for s in dead)


def test_transient_errors_truth_matches_retries_and_dead_letters(redis_server, tmp_path):
    records, shop, spans, _ = _run(
        redis_server, tmp_path, ["transient_error:group=payments,rate=0.6"], SAMPLE_BACKOFF_MS="2"
    )
    payments = _consumer_spans(spans, "payments")
    failed_attempts = sum(len([e for e in s.events if e.name == "retry"]) for s in payments)
    assert failed_attempts == len(_ids(records, "transient_error")) > 0
    for record in (r for r in records if r["fault"] == "transient_error"):
        assert record["group"] == "payments" and record["detail"]["attempt"] >= 1
    dead = sorted(
        s.attributes["messaging.message.id"] for s in payments if s.attributes["eventscope.outcome"] == "dead_lettered"
    )
    assert dead == sorted(_ids(records, "dead_letter"))
    assert all(
        s.attributes["eventscope.attempts"] == 4
        for s in payments
        if s.attributes["eventscope.outcome"] == "dead_lettered"
    )


def test_clock_skew_truth_is_every_event_stamped_in_the_future(redis_server, tmp_path):
    records, _, spans, bus = _run(redis_server, tmp_path, ["clock_skew:rate=0.5,skew_ms=800,start_s=0"])

    def ahead(event: dict, received_ns: int) -> bool:
        moment = datetime.datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp() * 1e9
        return moment - received_ns > 400e6

    future = sorted(e["id"] for ch, e, t in bus.messages if ch == "shop.orders" and ahead(e, t))
    assert future and sorted(_ids(records, "clock_skew")) == future
    assert all(r["detail"]["skew_ms"] == 800 for r in records)
    skewed = {s.attributes["messaging.message.id"]: s for s in spans if s.kind == SpanKind.PRODUCER}
    consumers = [s for s in spans if s.kind == SpanKind.CONSUMER and s.attributes["messaging.message.id"] in future]
    assert consumers and all(c.start_time < skewed[c.attributes["messaging.message.id"]].start_time for c in consumers)


def test_double_subscription_truth_is_every_second_copy_the_group_got(redis_server, tmp_path):
    records, shop, spans, _ = _run(redis_server, tmp_path, ["double_subscription:group=notifications"])
    deliveries = Counter(s.attributes["messaging.message.id"] for s in _consumer_spans(spans, "notifications"))
    twice = sorted(i for i, n in deliveries.items() if n == 2)
    assert twice and sorted(_ids(records, "double_subscription")) == twice
    assert max(deliveries.values()) == 2
    assert {r["group"] for r in records} == {"notifications"}
    assert shop.consumer("notifications").outcomes["duplicate_skipped"] == len(twice)
    for group in ("inventory", "shipping"):
        assert set(Counter(s.attributes["messaging.message.id"] for s in _consumer_spans(spans, group)).values()) == {1}


def test_a_crashed_group_comes_back_and_processes_again(redis_server, tmp_path):
    """Pub/Sub keeps nothing for an absent subscriber: after the restart only new events arrive."""
    records, shop, spans, bus = _run(
        redis_server, tmp_path, ["consumer_crash:group=inventory,start_s=0.5,for_s=1"], rate=30, seconds=3
    )
    # inventory also consumes shop.payments (payment outcomes); its orders are what this test follows
    lost = {r["event_id"] for r in records if r["fault"] == "consumer_crash" and r["channel"] == "shop.orders"}
    crash_ends = max(r["time_ns"] for r in records)
    processed = [s for s in _consumer_spans(spans, "inventory") if s.name == "process shop.orders"]
    assert lost and not lost & {s.attributes["messaging.message.id"] for s in processed}
    assert any(s.start_time > crash_ends for s in processed)
    assert {e["id"] for e in bus.on("shop.orders")} == lost | {s.attributes["messaging.message.id"] for s in processed}


def test_a_buffer_limit_for_a_slow_consumer_is_set_and_restored(redis_server, tmp_path):
    client = redis_server.client()
    original = client.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    seen: list[str] = []
    settings = faults.load_settings({}, ["slow_consumer:group=order-view,start_s=0,delay_ms=1,buffer_limit_kb=64"])
    injector = faults.FaultInjector(settings, 7, truth.GroundTruth())
    config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_V1_SHARE": "0"})
    with Shop(config, exporter_factory_for(InMemorySpanExporter()), faults=injector) as shop:
        shop.orders.place_order(
            {
                "order_id": "order-slow",
                "user_id": "u",
                "total_cents": 90,
                "lines": [{"sku": "sku-plum", "qty": 1, "unit_price_cents": 90}],
            }
        )
        wait_until(lambda: shop.consumer("order-view").processed >= 1)
        seen.append(client.config_get("client-output-buffer-limit")["client-output-buffer-limit"])
    assert "pubsub 65536 65536 0" in seen[0]
    assert client.config_get("client-output-buffer-limit")["client-output-buffer-limit"] == original
    (record,) = injector.truth.records
    assert record["detail"]["buffer_limit_kb"] == 64
