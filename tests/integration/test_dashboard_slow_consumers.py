"""A slow consumer on the Latency and Broker pages (AppTest), from spans sent through the real OTLP exporter:
one group starts every delivery 800 ms after its publication, its two peers within milliseconds."""

from __future__ import annotations

import time

import pytest
from opentelemetry.trace import Link, SpanKind

from tests.integration.test_dashboard_pages import message_attributes, open_page, texts, tracer
from tests.processes import Collectors, wait_until

pytestmark = pytest.mark.integration

S = 1_000_000_000
MS = 1_000_000
LAG_MS = {"t-view": 800, "t-stock": 2, "t-mail": 3}
BUCKETS = 3
PER_BUCKET = 4


def send_deliveries(api: str, base_ns: int) -> None:
    producer_provider, producer = tracer(api, "t-producer")
    consumers = {group: tracer(api, group) for group in LAG_MS}
    for n in range(BUCKETS * PER_BUCKET):
        event_id, t = f"slow-{n}", base_ns + n * (S // PER_BUCKET)
        span = producer.start_span("send t.orders", kind=SpanKind.PRODUCER, start_time=t,
                                   attributes=message_attributes(event_id, n + 1, "send"))  # fmt: skip
        span.end(end_time=t + MS)
        for group, (_, consumer) in consumers.items():
            start = t + LAG_MS[group] * MS
            attributes = {**message_attributes(event_id, n + 1, "process"), "messaging.consumer.group.name": group}
            delivery = consumer.start_span("process t.orders", kind=SpanKind.CONSUMER, start_time=start,
                                           links=[Link(span.get_span_context())], attributes=attributes)  # fmt: skip
            delivery.end(end_time=start + MS)
    for provider in [producer_provider] + [p for p, _ in consumers.values()]:
        provider.shutdown()


@pytest.fixture(scope="module")
def slow(redis_server):
    process = Collectors(redis_server.url)
    base_ns = (time.time_ns() // S - 30) * S
    send_deliveries(process.api, base_ns)
    wait_until(lambda: process.get("health")["store"]["spans"] == BUCKETS * PER_BUCKET * 4, what="spans stored")
    yield process
    process.stop()


def test_the_slow_consumer_answer_names_the_group_and_its_window(slow):
    (episode,) = slow.get("slow-consumers")["slow"]
    assert (episode["group"], episode["buckets"], episode["deliveries"]) == ("t-view", BUCKETS, BUCKETS * PER_BUCKET)
    assert episode["peak_p50_ms"] == pytest.approx(800, abs=1) and episode["peers_p50_ms"] == pytest.approx(2.5, abs=1)
    assert slow.get("slow-consumers?min_buckets=4")["slow"] == []
    assert slow.get("slow-consumers?group=t-mail")["slow"] == []


def test_the_latency_page_warns_of_the_slow_consumer_and_lists_it(slow, monkeypatch):
    app = open_page(slow.api, "latency", monkeypatch, window="all")
    assert "Slow consumer: a group fell behind the other groups" in texts(app)
    frames = [d.value for d in app.dataframe if "worst median" in d.value.columns]
    assert [list(f["group"]) for f in frames] == [["t-view"]]
    assert frames[0]["worst median"][0] == "800.0 ms"


def test_the_broker_page_lists_slow_consumers_beside_the_output_buffers(slow, monkeypatch):
    wait_until(lambda: slow.get("broker").get("latest"), timeout=30, what="a broker sample")
    app = open_page(slow.api, "broker", monkeypatch, window="all")
    assert "Slow consumers" in [h.value for h in app.subheader]
    frames = [d.value for d in app.dataframe if "worst median" in d.value.columns]
    assert [list(f["group"]) for f in frames] == [["t-view"]]
