"""A small event flow built by hand: events published with redis-py, spans sent by the stock OTLP
exporter, and every analysis answering exactly what was done. ``EventFlow`` is reused by the
accuracy and broker tests."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tests.processes import RedisServer, running_collectors, wait_until

pytestmark = pytest.mark.integration

MS = 1_000_000


class EventFlow:
    """Publishes CloudEvents to the real Redis and sends producer/consumer spans through OTLP/HTTP."""

    def __init__(self, api: str, redis_client, system: str = "redis"):
        self.api = api
        self.redis = redis_client
        self.system = system
        self.providers: dict[str, TracerProvider] = {}
        self.spans_sent = 0

    def tracer(self, service: str):
        if service not in self.providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{self.api}/v1/traces")))
            self.providers[service] = provider
        return self.providers[service].get_tracer("eventscope.tests")

    def publish(
        self,
        service,
        channel,
        source,
        sequence,
        *,
        event_id=None,
        pk="p0",
        type_="shop.thing",
        t_ns=None,
        to_bus=True,
        span=True,
        subject=None,
        extra=None,
    ) -> dict:
        """One event: a producer span (unless span=False) and a PUBLISH (unless to_bus=False)."""
        event_id = event_id or str(uuid.uuid4())
        t_ns = t_ns or time.time_ns()
        event = {"specversion": "1.0", "id": event_id, "source": source, "type": type_}
        if sequence is not None:
            event["sequence"] = str(sequence)
        if pk is not None:
            event["partitionkey"] = pk
        if subject:
            event["subject"] = subject
        context = None
        if span:
            attributes = {
                "messaging.system": self.system,
                "messaging.operation.type": "send",
                "messaging.destination.name": channel,
                "messaging.message.id": event_id,
                "cloudevents.event_source": source,
                "cloudevents.event_type": type_,
                **({"eventscope.sequence": sequence} if sequence is not None else {}),
                **({"eventscope.partitionkey": pk} if pk is not None else {}),
                **({"cloudevents.event_subject": subject} if subject else {}),
                **(extra or {}),
            }
            producer = self.tracer(service).start_span(
                f"send {channel}", kind=SpanKind.PRODUCER, attributes=attributes, start_time=t_ns
            )
            producer.end(end_time=t_ns + MS)
            self.spans_sent += 1
            context = producer.get_span_context()
            event["traceparent"] = f"00-{context.trace_id:032x}-{context.span_id:016x}-01"
        if to_bus:
            self.redis.publish(channel, json.dumps(event))
        return {
            "id": event_id,
            "channel": channel,
            "source": source,
            "sequence": sequence,
            "pk": pk,
            "type": type_,
            "context": context,
            "t_ns": t_ns,
            "subject": subject,
            "payload": json.dumps(event),
        }

    def consume(
        self,
        group,
        event,
        *,
        outcome="processed",
        delay_ms=5.0,
        duration_ms=2.0,
        parent=True,
        link=True,
        retries=0,
        reason=None,
        status_error=None,
        extra=None,
        service=None,
    ) -> None:
        """One delivery of ``event`` to ``group``: a consumer span with the given outcome."""
        attributes = {
            "messaging.system": self.system,
            "messaging.operation.type": "process",
            "messaging.destination.name": event["channel"],
            "messaging.message.id": event["id"],
            "messaging.consumer.group.name": group,
            "cloudevents.event_source": event["source"],
            "cloudevents.event_type": event["type"],
            "eventscope.attempts": retries + 1,
            **({"eventscope.outcome": outcome} if outcome else {}),
            **({"eventscope.sequence": event["sequence"]} if event["sequence"] is not None else {}),
            **({"eventscope.partitionkey": event["pk"]} if event["pk"] is not None else {}),
            **({"eventscope.dead_letter.reason": reason} if reason else {}),
            **(extra or {}),
        }
        producer = event["context"]
        context = trace.set_span_in_context(trace.NonRecordingSpan(producer)) if parent and producer else None
        links = [Link(producer)] if link and producer else []
        start = event["t_ns"] + int(delay_ms * MS)
        span = self.tracer(service or group).start_span(
            f"process {event['channel']}",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
            start_time=start,
        )
        for attempt in range(1, retries + 1):
            span.add_event(
                "retry",
                {"eventscope.attempt": attempt, "eventscope.retry.delay_ms": 10.0 * attempt},
                timestamp=start + attempt * MS,
            )
        if outcome in ("dead_lettered", "failed") or status_error:
            span.set_status(Status(StatusCode.ERROR, reason or "failed"))
        span.end(end_time=start + int(duration_ms * MS))
        self.spans_sent += 1

    def flush(self, collectors) -> None:
        """Export every span and wait until the store holds them all."""
        for provider in self.providers.values():
            provider.force_flush()
        wait_until(lambda: collectors.get("health")["store"]["spans"] >= self.spans_sent, what="spans stored")

    def close(self) -> None:
        for provider in self.providers.values():
            provider.shutdown()


@pytest.fixture
def flow(collectors, redis_server):
    events = EventFlow(collectors.api, redis_server.client())
    yield events
    events.close()


@pytest.fixture(scope="module")
def built():
    """The shop below in one collectors process, for every test that only reads it. It taps a redis-server of
    its own: what the tests that add events publish on the session's never reaches it."""
    server = RedisServer()
    try:
        with running_collectors(server.url) as collectors:
            events = EventFlow(collectors.api, server.client())
            try:
                yield collectors, events, shop(events, collectors)
            finally:
                events.close()
    finally:
        server.stop()


def shop(flow: EventFlow, collectors) -> dict:
    """orders publishes 6 events on shop.orders (sequence 4 dropped before the broker, 5 published
    twice); inventory processes all but 3 (never delivered) and skips the duplicate; payments
    dead-letters 6 after 2 retries and processes 5 twice; then inventory publishes one linked event."""
    base = time.time_ns() - 60_000 * MS
    events = {}
    for sequence in (1, 2, 3, 5, 6):
        events[sequence] = flow.publish(
            "orders",
            "shop.orders",
            "/orders/1",
            sequence,
            t_ns=base + sequence * 100 * MS,
            type_="shop.order.placed",
            subject=f"order-{sequence}",
        )
    flow.redis.publish(
        "shop.orders",
        json.dumps(
            {
                "specversion": "1.0",
                "id": events[5]["id"],
                "source": "/orders/1",
                "type": "shop.order.placed",
                "sequence": "5",
                "partitionkey": "p0",
            }
        ),
    )
    for sequence in (1, 2, 5, 6):
        flow.consume("inventory", events[sequence], delay_ms=10.0 * sequence)
    flow.consume("inventory", events[5], outcome="duplicate_skipped", delay_ms=60)
    for sequence in (1, 2, 3):
        flow.consume("payments", events[sequence], delay_ms=20)
    flow.consume("payments", events[5], delay_ms=20)
    flow.consume("payments", events[5], delay_ms=70)
    flow.consume("payments", events[6], outcome="dead_lettered", retries=2, reason="card declined", delay_ms=20)
    stock = flow.publish(
        "inventory", "shop.stock", "/inventory/1", 1, t_ns=base + 1000 * MS, type_="shop.stock.reserved"
    )
    stock["context_parent"] = events[1]["context"]
    flow.consume("payments", stock, delay_ms=3, parent=False)
    flow.flush(collectors)
    wait_until(lambda: collectors.get("health")["store"]["bus_messages"] == 7, what="bus messages")
    return {"events": events, "stock": stock, "base": base}


def test_report_counts_every_vantage_point(built):
    collectors, _, _ = built
    streams = {(s["vantage"], s["channel"]): s for s in collectors.get("report?grace_s=0")["streams"]}
    bus = streams[("bus", "shop.orders")]
    assert (bus["received"], bus["duplicates"], bus["missing"], bus["lost_gaps"]) == (6, 1, 1, [[4, 4]])
    inventory = streams[("inventory", "shop.orders")]
    assert (inventory["received"], inventory["duplicates"], inventory["gaps"]) == (5, 1, [[3, 4]])
    assert (inventory["duplicates_handled"], inventory["duplicates_processed"]) == (1, 0)
    payments = streams[("payments", "shop.orders")]
    assert (payments["duplicates_handled"], payments["duplicates_processed"], payments["gaps"]) == (0, 1, [[4, 4]])


def test_loss_says_where_each_event_was_lost(built):
    collectors, _, shop_run = built
    e = shop_run["events"]
    answer = collectors.get("loss?grace_s=0&channel=shop.orders")
    found = {(x["where"], x["vantage"], x["sequence"], x["event_id"]) for x in answer["lost"]}
    assert found == {
        ("before_broker", "bus", 4, None),
        ("at_delivery", "inventory", 3, e[3]["id"]),
        ("in_processing", "payments", 6, e[6]["id"]),
    }
    assert answer["counts"] == {"before_broker": 1, "at_delivery": 1, "in_processing": 1}
    assert collectors.get("loss?grace_s=3600")["counts"] == {"before_broker": 0, "at_delivery": 0, "in_processing": 1}


def test_latency_is_exact_and_grouped(built):
    collectors, _, _ = built
    answer = collectors.get("latency?by=group&channel=shop.orders")
    summary = {(s["key"], s["measure"]): s for s in answer["summary"]}
    inventory = summary[("inventory", "delivery")]
    assert inventory["count"] == 5
    assert inventory["p50_ms"] == pytest.approx(50.0)  # delays 10, 20, 50, 60, 60
    assert summary[("payments", "processing")]["p99_ms"] == pytest.approx(2.0)
    assert answer["negative_delivery"] == 0
    assert {s["measure"] for s in answer["samples"]} == {"delivery", "processing", "end_to_end"}
    assert sum(b["count"] for b in answer["buckets"] if b["measure"] == "delivery") == 11


def test_retried_deliveries_say_how_many_attempts_failed(built):
    collectors, _, shop_run = built
    e = shop_run["events"]
    answer = collectors.get("retries")
    assert (answer["count"], answer["outcomes"]) == (1, {"dead_lettered": 1})
    (retried,) = answer["retried"]
    assert (retried["event_id"], retried["group"], retried["outcome"]) == (e[6]["id"], "payments", "dead_lettered")
    assert (retried["attempts"], retried["failed_attempts"]) == (3, 3)  # two retries, then the last attempt failed
    assert [r["delay_ms"] for r in retried["retries"]] == [10.0, 20.0]
    assert collectors.get("retries?group=inventory")["retried"] == []


def test_clock_skew_lists_deliveries_that_started_before_their_publication(flow, collectors):
    shop(flow, collectors)
    ahead = flow.publish("orders", "shop.orders", "/orders/2", 1, t_ns=time.time_ns() - 30_000 * MS)
    flow.consume("inventory", ahead, delay_ms=-40.0)  # inventory's clock runs 40 ms behind orders'
    flow.consume("payments", ahead, delay_ms=15.0)
    flow.flush(collectors)
    answer = collectors.get("clock-skew")
    assert answer["count"] == 1 == collectors.get("latency")["negative_delivery"]
    (pair,) = answer["pairs"]
    assert (pair["producer_service"], pair["consumer_service"], pair["count"]) == ("orders", "inventory", 1)
    assert pair["min_ms"] == pytest.approx(-40.0)
    (delivery,) = answer["deliveries"]
    assert (delivery["event_id"], delivery["group"]) == (ahead["id"], "inventory")
    assert delivery["delivery_ms"] == pytest.approx(-40.0)


def test_end_to_end_follows_links_across_traces(built):
    collectors, _, e = built
    answer = collectors.get("latency?by=type&type=shop.stock.reserved")
    (e2e,) = [s for s in answer["summary"] if s["measure"] == "end_to_end"]
    assert e2e["count"] == 1 and e2e["p50_ms"] == pytest.approx(5.0)  # published, +3 ms, 2 ms processing
    assert e["stock"]["sequence"] == 1


def test_flow_graph_has_channels_and_link_edges(built):
    collectors, _, _ = built
    graph = collectors.get("flow")
    edges = {(x["source"], x["target"], x["kind"]): x for x in graph["edges"]}
    publish = edges[("service:orders", "channel:shop.orders", "publish")]
    assert (publish["count"], publish["gaps"], publish["duplicates"]) == (5, 1, 1)
    deliver = edges[("channel:shop.orders", "service:payments", "deliver")]
    assert (deliver["count"], deliver["errors"], deliver["duplicates"]) == (6, 1, 1)
    link = edges[("service:inventory", "service:payments", "link")]
    assert link["count"] == 1 and link["p95_ms"] == pytest.approx(3.0)
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert (nodes["channel:shop.stock"]["kind"], nodes["channel:shop.stock"]["label"]) == ("channel", "shop.stock")
    tapped = {n["label"]: n["messages"] for n in graph["nodes"] if n["kind"] == "channel"}
    bus = collectors.get("overview")["messages"]
    assert sum(tapped.values()) == bus and tapped["shop.orders"] == 6  # every message the tap saw, on its channel


def test_life_of_one_event(built):
    collectors, _, shop_run = built
    e = shop_run["events"]
    life = collectors.get(f"events/{e[6]['id']}")
    assert [p["service"] for p in life["published"]] == ["orders"]
    assert len(life["bus"]) == 1
    by_group = {d["group"]: d for d in life["deliveries"]}
    assert by_group["payments"]["outcome"] == "dead_lettered"
    assert [r["attempt"] for r in by_group["payments"]["retries"]] == [1, 2]
    assert by_group["payments"]["dead_letter_reason"] == "card declined"
    assert "payments: dead_lettered after 2 retries" in life["verdict"]
    assert collectors.get("dead-letters")["dead_letters"][0]["event_id"] == e[6]["id"]


def test_duplicates_handled_vs_processed(built):
    collectors, _, shop_run = built
    e = shop_run["events"]
    answer = collectors.get("duplicates")
    found = {(d["vantage"], d["event_id"], d["copies"], d["handled"], d["processed"]) for d in answer["duplicates"]}
    assert found == {
        ("bus", e[5]["id"], 2, 0, 0),
        ("inventory", e[5]["id"], 2, 1, 0),
        ("payments", e[5]["id"], 2, 0, 1),
    }
    assert {(g["vantage"], g["handled"], g["processed"]) for g in answer["by_group"]} == {
        ("inventory", 1, 0),
        ("payments", 0, 1),
    }


def test_sequences_mark_late_and_duplicate_arrivals(built):
    collectors, _, _ = built
    answer = collectors.get("sequences?channel=shop.orders&source=/orders/1&partitionkey=p0&vantage=bus&grace_s=0")
    assert [(a["sequence"], a["duplicate"]) for a in answer["arrivals"]] == [
        (1, False),
        (2, False),
        (3, False),
        (5, False),
        (6, False),
        (5, True),
    ]
    assert (answer["gaps"], answer["lost_gaps"]) == ([[4, 4]], [[4, 4]])


def test_traces_search_and_links_in_and_out(built):
    collectors, _, e = built
    found = collectors.get("traces?error=true")["traces"]
    assert [t["trace_id"] for t in found] == [f"{e['events'][6]['context'].trace_id:032x}"]
    by_subject = collectors.get("traces?subject=order-2")["traces"]
    assert by_subject[0]["root_name"] == "send shop.orders" and by_subject[0]["services"] == [
        "inventory",
        "orders",
        "payments",
    ]
    stock_trace = f"{e['stock']['context'].trace_id:032x}"
    detail = collectors.get(f"traces/{stock_trace}")
    (incoming,) = detail["links_in"]
    assert (incoming["service"], incoming["name"], incoming["span_id"]) == (
        "payments",
        "process shop.stock",
        f"{e['stock']['context'].span_id:016x}",
    )
    assert detail["critical_path"] == [f"{e['stock']['context'].span_id:016x}"]
    consumer_trace = collectors.get(f"traces/{incoming['linked_trace_id']}")
    assert consumer_trace["links_out"][0]["trace_id"] == stock_trace
    assert consumer_trace["critical_path"] == [incoming["linked_span_id"]]
    order_trace = collectors.get(f"traces/{e['events'][6]['context'].trace_id:032x}")
    assert order_trace["critical_path"][0] == f"{e['events'][6]['context'].span_id:016x}"
    assert len(order_trace["critical_path"]) == 2


def test_instrumentation_health(flow, collectors):
    shop(flow, collectors)
    bare = flow.publish("legacy", "shop.orders", "/legacy/1", None, span=False, pk=None)
    flow.tracer("legacy").start_span(
        "process shop.orders", kind=SpanKind.CONSUMER, attributes={"messaging.destination.name": "shop.orders"}
    ).end()
    flow.spans_sent += 1
    flow.flush(collectors)
    # just published: its producer span could still be in an SDK's export batch, so it is not counted yet
    assert collectors.get("instrumentation")["bus_without_producer"] == {"count": 0, "examples": []}
    health = wait_until(
        lambda: (h := collectors.get("instrumentation?settle_s=0"))["bus_without_producer"]["count"] and h
    )
    assert health["bus_without_producer"] == {"count": 1, "examples": [bare["id"]]}
    assert health["unlinked_consumers"] == [{"service": "legacy", "span_name": "process shop.orders", "count": 1}]
    assert health["missing_attributes"] == [
        {
            "service": "legacy",
            "span_name": "process shop.orders",
            "kind": "Consumer",
            "count": 1,
            "missing": ["messaging.system", "messaging.message.id", "messaging.consumer.group.name"],
        }
    ]


def test_overview_headline(built):
    collectors, flow, _ = built
    answer = collectors.get("overview?grace_s=0")
    assert (answer["bus_messages"], answer["deliveries"], answer["dead_letters"], answer["malformed"]) == (7, 12, 1, 0)
    assert (answer["missing"], answer["duplicates"], answer["duplicates_processed"]) == (1 + 2 + 1, 3, 1)
    assert answer["p95_delivery_ms"] is not None and answer["spans"] == flow.spans_sent
