"""Each event-driven pattern of the sample shop behaves, on a real Redis: event-sourcing replay,
the CQRS projection, upcasting, retries with growing backoff, dead letters and their redrive,
and the scenarios' command line and ground truth."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sample_system import faults, scenarios, truth, wallet
from sample_system.config import load_config
from sample_system.deadletters import DeadLetterQueue
from sample_system.redrive import redrive
from sample_system.services import accounts, inventory, order_view, payments
from sample_system.shop import Shop, exporter_factory_for
from sample_system.storefront import run_load
from tests.processes import ROOT, RedisServer, wait_until

pytestmark = pytest.mark.integration


def _shop(redis_server, memory=None, injector=None, **env):
    config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_V1_SHARE": "0", **env})
    return Shop(config, exporter_factory_for(memory or InMemorySpanExporter()), faults=injector)


def _injector(*flags: str) -> faults.FaultInjector:
    return faults.FaultInjector(faults.load_settings({}, list(flags)), 3, truth.GroundTruth())


def test_replaying_the_event_store_gives_the_live_balances_now_and_in_the_past(redis_server):
    with _shop(redis_server) as shop:
        run_load(shop.handlers(), rate=0, seed=21, stop=threading.Event(), limit=40)
        assert shop.wait_idle()
        halfway_ms = int(time.time() * 1000)
        time.sleep(0.01)
        shop.accounts.top_up({"user_id": "user-21-0001", "amount_cents": 700})
        assert accounts.replay(shop.client) == accounts.live_balances(shop.client)
        now = accounts.balance_at(shop.client, "user-21-0001")
        assert accounts.balance_at(shop.client, "user-21-0001", halfway_ms) == now - 700
        assert accounts.balance_at(shop.client, "user-never", halfway_ms) is None
        withdrawals = shop.client.xlen(accounts.EVENT_STORE)
        assert withdrawals >= shop.accounts.appended


def test_a_short_wallet_declines_the_payment_cancels_the_order_and_gives_the_stock_back(redis_server):
    memory = InMemorySpanExporter()
    with _shop(redis_server, memory) as shop:
        issued = run_load(shop.handlers(), rate=0, seed=23, stop=threading.Event(), limit=80)
        assert shop.wait_idle()
        balances = accounts.live_balances(shop.client)
        assert shop.payments.declined > 0 and shop.payments.captured_cents > 0
        assert min(balances.values()) >= 0 and accounts.replay(shop.client) == balances
        assert all(int(v) == 0 for v in shop.client.hvals(wallet.HOLDS))  # every capture became a withdrawal
        # every reservation of this run settled (the session's Redis may hold other tests' shops' keys)
        assert not shop.client.keys(inventory.RESERVATION_PREFIX + "order-23-*")
        orders = [
            order_view.order_status(shop.client, f"order-23-{n:06d}") for n in range(1, 1 + issued["place_order"])
        ]
        assert sum(o["status"] == "cancelled" for o in orders) == shop.payments.declined
    sent = [
        s.attributes.get("cloudevents.event_type") for s in memory.get_finished_spans() if s.kind == SpanKind.PRODUCER
    ]
    unpaid = sent.count(payments.PAYMENT_DECLINED) + sent.count(payments.PAYMENT_FAILED)
    assert sent.count(payments.PAYMENT_DECLINED) == shop.payments.declined
    assert sent.count(inventory.STOCK_RELEASED) == unpaid  # the compensating event, once per unpaid order
    compensating = [
        s for s in memory.get_finished_spans()
        if s.name == "process shop.payments" and s.attributes["messaging.consumer.group.name"] == "inventory"
    ]  # fmt: skip
    assert len(compensating) == sent.count("shop.payment.captured") + unpaid


def test_the_order_view_converges_on_the_write_side(redis_server):
    with _shop(redis_server) as shop:
        issued = run_load(shop.handlers(), rate=0, seed=22, stop=threading.Event(), limit=40)
        assert shop.wait_idle()
        statuses = [
            order_view.order_status(shop.client, f"order-22-{n:06d}") for n in range(1, 1 + issued["place_order"])
        ]
        assert all(statuses)
        assert sum(s["status"] == "shipped" for s in statuses) == shop.shipping.shipped
        assert shop.order_view.max_lag_ms > 0
        assert float(shop.client.hget(order_view.LAG_KEY, "last_ms")) == pytest.approx(
            shop.order_view.last_lag_ms, abs=0.1
        )


def test_order_view_status_only_moves_forward_whatever_the_arrival_order(redis_server):
    view = order_view.OrderView(redis_server.client())
    noop = trace.INVALID_SPAN
    for event_type in ("shop.order.shipped", "shop.order.placed", "shop.payment.captured"):
        view.handle("c", {"type": event_type, "data": {"order_id": "order-late", "user_id": "u"}}, noop)
    assert order_view.order_status(redis_server.client(), "order-late")["status"] == "shipped"


def test_a_v1_order_is_upcast_and_the_version_is_on_the_spans(redis_server):
    memory = InMemorySpanExporter()
    with _shop(redis_server, memory, SAMPLE_V1_SHARE="1") as shop:
        shop.accounts.sign_up({"user_id": "u1"})  # a wallet that covers the order
        shop.orders.place_order(
            {
                "order_id": "order-v1",
                "user_id": "u1",
                "total_cents": 300,
                "lines": [{"sku": "sku-pear", "qty": 2, "unit_price_cents": 150}],
            }
        )
        wait_until(lambda: shop.consumer("payments").processed == 1)
        assert shop.wait_idle(quiet_s=0.3)
    spans = [s for s in memory.get_finished_spans() if s.attributes.get("cloudevents.event_subject") == "order-v1"]
    placed = [s for s in spans if s.name.endswith("shop.orders")]
    assert {s.attributes["eventscope.schema.version"] for s in placed} == {1}
    assert {s.attributes["eventscope.outcome"] for s in placed if s.kind == SpanKind.CONSUMER} == {"processed"}
    (payment,) = [
        s
        for s in spans
        if s.name == "process shop.stock" and s.attributes["messaging.consumer.group.name"] == "payments"
    ]
    assert payment.attributes["eventscope.outcome"] == "processed"
    assert shop.payments.captured_cents == 300


def test_backoff_delays_grow_as_configured_and_the_last_failure_dead_letters(redis_server):
    memory = InMemorySpanExporter()
    injector = _injector("transient_error:group=payments,rate=1")
    with _shop(redis_server, memory, injector, SAMPLE_MAX_ATTEMPTS="4", SAMPLE_BACKOFF_MS="10") as shop:
        shop.accounts.sign_up({"user_id": "u2"})
        event = shop.orders.place_order(
            {
                "order_id": "order-retry",
                "user_id": "u2",
                "total_cents": 100,
                "lines": [{"sku": "sku-fig", "qty": 1, "unit_price_cents": 100}],
            }
        )
        wait_until(lambda: shop.consumer("payments").outcomes["dead_lettered"] == 1)
        injector.settings.pop("transient_error")  # the dependency is fixed: a redrive must now succeed
        dlq = DeadLetterQueue(shop.client)
        (entry,) = [
            e
            for e in dlq.entries()
            if e["group"] == "payments"
            and e["channel"] == "shop.stock"
            and json.loads(e["event"])["subject"] == "order-retry"
        ]
        assert entry["attempts"] == 4 and entry["reason"].startswith("failed after 4 attempts")
        assert redrive(dlq, entry["entry_id"], lambda line: None) == 0
        wait_until(lambda: shop.consumer("payments").outcomes["processed"] == 1, what="redriven payment")
        assert dlq.get(entry["entry_id"]) is None
    (failed,) = [
        s
        for s in memory.get_finished_spans()
        if s.name == "process shop.stock" and s.attributes["eventscope.outcome"] == "dead_lettered"
    ]
    retries = [e for e in failed.events if e.name == "retry"]
    assert [e.attributes["eventscope.attempt"] for e in retries] == [1, 2, 3, 4]
    delays = [e.attributes["eventscope.retry.delay_ms"] for e in retries]
    for attempt, delay in enumerate(delays[:3], start=1):
        ceiling = 10 * 2 ** (attempt - 1)
        assert ceiling * 0.5 <= delay <= ceiling
    assert delays[3] == 0
    assert failed.attributes["eventscope.attempts"] == 4
    assert failed.status.status_code.name == "ERROR"
    assert event["subject"] == "order-retry"


def test_poison_lands_in_the_dead_letter_queue_with_its_reason(redis_server):
    injector = _injector("poison_message:rate=1")
    with _shop(redis_server, injector=injector) as shop:
        event = shop.orders.place_order(
            {
                "order_id": "order-poison",
                "user_id": "u3",
                "total_cents": 90,
                "lines": [{"sku": "sku-plum", "qty": 1, "unit_price_cents": 90}],
            }
        )
        wait_until(lambda: shop.consumer("inventory").outcomes["dead_lettered"] == 1)
    entries = [e for e in DeadLetterQueue(redis_server.client()).entries() if e["event_id"] == event["id"]]
    assert {e["group"] for e in entries} == {"inventory", "order-view"}
    for entry in entries:
        assert "schema validation failed" in entry["reason"] and "shop.order.placed v2" in entry["reason"]
        assert json.loads(entry["event"])["id"] == event["id"]


def test_a_producer_refuses_an_event_its_schema_rejects(redis_server):
    from sample_system.registry import SchemaError

    with _shop(redis_server) as shop, pytest.raises(SchemaError, match="lines"):
        shop.orders.place_order({"order_id": "order-bad", "user_id": "u4", "total_cents": 0, "lines": []})


def test_scenario_api_writes_truth_and_stops_on_request(redis_server, tmp_path):
    path = tmp_path / "truth.jsonl"
    stop = threading.Event()
    threading.Timer(2.0, stop.set).start()
    lines: list[str] = []
    summary = scenarios.run_scenario(
        "duplicates",
        30,
        4,
        str(path),
        redis_server.url,
        stop,
        progress=lines.append,
        exporter_factory=exporter_factory_for(InMemorySpanExporter()),
    )
    records = truth.read(path)
    assert summary["truth"] == {k: sum(r["fault"] == k for r in records) for k in summary["truth"]}
    assert summary["truth"]["duplicate_publish"] > 0
    assert lines[0].startswith("scenario duplicates:") and any(line.startswith("t=") for line in lines)
    # stopped early, the shop does not wait for its consumers to catch up: a last copy may be unread
    assert 0 < summary["outcomes"]["inventory"]["duplicate_skipped"] <= summary["truth"]["duplicate_publish"]


def test_scenario_command_line_lists_and_runs(redis_server, tmp_path):
    listing = subprocess.run(
        [sys.executable, "-m", "sample_system", "scenario", "list", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    catalogue = json.loads(listing.stdout)
    assert {s["name"] for s in catalogue} == set(scenarios.CATALOGUE) and len(catalogue) == 11
    assert all(s["description"] and s["what_to_look_for"] and 0 < s["seconds"] <= 20 for s in catalogue)
    path = tmp_path / "truth.jsonl"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sample_system",
            "scenario",
            "run",
            "poison_message",
            "--seconds",
            "2",
            "--seed",
            "9",
            "--truth",
            str(path),
            "--redis-url",
            redis_server.url,
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"OTEL_SDK_DISABLED": "true", "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)  # the summary alone; the progress lines went to stderr
    assert summary["scenario"] == "poison_message" and "scenario poison_message:" in run.stderr
    records = truth.read(path)
    assert {r["fault"] for r in records} <= {"poison_message", "dead_letter"}
    assert summary["truth"] == {k: sum(r["fault"] == k for r in records) for k in summary["truth"]}
    dlq = subprocess.run(
        [sys.executable, "-m", "sample_system", "dlq", "list", "--json", "--redis-url", redis_server.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert isinstance(json.loads(dlq.stdout), list)
    unknown = subprocess.run(
        [sys.executable, "-m", "sample_system", "dlq", "redrive", "0-1", "--redis-url", redis_server.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert unknown.returncode == 1 and "no dead letter" in unknown.stdout


def test_services_run_one_process_each(redis_server):
    """Consumer groups can live in their own processes: shipping here runs in a second one."""
    client = redis_server.client()
    before = client.pubsub_numsub("shop.payments")[0][1]
    other = subprocess.Popen(
        [sys.executable, "-m", "sample_system", "run", "--services", "shipping", "--redis-url", redis_server.url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"OTEL_SDK_DISABLED": "true", "PATH": "/usr/bin:/bin"},
    )
    try:
        wait_until(lambda: client.pubsub_numsub("shop.payments")[0][1] > before, what="shipping subscribed")
        config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_V1_SHARE": "0"})
        with Shop(config, exporter_factory_for(InMemorySpanExporter()), groups=["inventory", "payments"]) as shop:
            assert [c.group for c in shop.consumers] == ["inventory", "payments"]
            run_load(shop.handlers(), rate=0, seed=31, stop=threading.Event(), limit=15)
            assert shop.wait_idle()
            (publisher,) = [p for p in shop.publishers if p.source.startswith("/sample/payments/")]
            payments = publisher.published
            pattern = f"{{sample}}:dedupe:shipping:{publisher.source}:*"
            wait_until(lambda: len(list(client.scan_iter(pattern))) == payments, what="shipping took every payment")
    finally:
        other.terminate()
        out, _ = other.communicate(timeout=30)
    assert other.returncode == 0
    assert f"'shipping': {payments}" in out.splitlines()[-1]


def test_the_shop_rides_out_a_redis_restart():
    """Redis goes away and comes back: the load and the consumers carry on by themselves."""
    server = RedisServer()
    try:
        config = load_config({"REDIS_URL": server.url, "SAMPLE_V1_SHARE": "0"})
        stop = threading.Event()
        issued: dict = {}
        with Shop(config, exporter_factory_for(InMemorySpanExporter())) as shop:
            loader = threading.Thread(target=lambda: issued.update(run_load(shop.handlers(), 40, 51, stop)))
            loader.start()
            # shipping handles one payment outcome per order (inventory also handles the outcomes now)
            wait_until(lambda: shop.consumer("shipping").processed > 10, what="traffic before the outage")
            server.stop()
            server = RedisServer(port=server.port)
            before = shop.consumer("shipping").processed
            wait_until(lambda: shop.consumer("shipping").processed > before + 10, timeout=60, what="traffic after")
            stop.set()
            loader.join(timeout=30)
        assert issued["place_order"] > 20
    finally:
        server.stop()


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xfe not an event",
        b'{"specversion": "1.0", "source": "/x", "type": "t"}',
        b'{"specversion": "1.0", "id": "g", "source": "/x", "type": "t", "sequence": "x"}',
        b"[" * 50_000,
    ],
)
def test_garbage_on_a_shop_channel_is_dead_lettered_and_the_groups_keep_going(redis_server, payload):
    memory = InMemorySpanExporter()
    with _shop(redis_server, memory) as shop:
        redis_server.client().publish("shop.orders", payload)
        wait_until(lambda: shop.consumer("inventory").outcomes["dead_lettered"] == 1, what="garbage dead-lettered")
        event = shop.orders.place_order(
            {
                "order_id": "order-after-garbage",
                "user_id": "u5",
                "total_cents": 90,
                "lines": [{"sku": "sku-plum", "qty": 1, "unit_price_cents": 90}],
            }
        )
        wait_until(lambda: shop.consumer("order-view").outcomes["processed"] >= 1, what="the next order")
    garbage = [
        e for e in DeadLetterQueue(redis_server.client()).entries() if e["reason"].startswith("not a CloudEvent")
    ]
    assert {e["group"] for e in garbage} >= {"inventory", "order-view"}
    assert all(e["event"].encode(errors="surrogateescape") == payload or e["event_id"] is None for e in garbage)
    spans = [s for s in memory.get_finished_spans() if s.name == "process shop.orders"]
    assert any(s.attributes.get("messaging.message.id") == event["id"] for s in spans)
    assert any(s.attributes["eventscope.outcome"] == "dead_lettered" for s in spans)
