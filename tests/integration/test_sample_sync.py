"""The synchronous shop on a real Redis: an order is accepted only once inventory, payments and shipping
answered, it is one trace of HTTP spans from the official instrumentations, and with shipping down the
order fails and what was done is undone."""

from __future__ import annotations

import threading

import pytest
import requests
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sample_system import wallet
from sample_system.config import load_config
from sample_system.runner import ContinuousRunner
from sample_system.services import inventory
from sample_system.shop import CONSUMER_GROUPS, LOAD, exporter_factory_for
from sample_system.sync import checkout
from sample_system.sync.services import Gate
from sample_system.sync.shop import SyncShop, service_name
from sample_system.truth import GroundTruth

pytestmark = pytest.mark.integration


def _order(order_id: str, total_cents: int = 240) -> dict:
    return {
        "order_id": order_id,
        "user_id": "user-s",
        "lines": [{"sku": "sku-apple", "qty": 2, "unit_price_cents": 120}],
        "total_cents": total_cents,
    }


def _shop(redis_server, memory: InMemorySpanExporter, gates=None) -> SyncShop:
    config = load_config({"REDIS_URL": redis_server.url})
    return SyncShop(config, exporter_factory_for(memory), gates)


def test_an_order_is_accepted_after_every_step_and_is_one_trace(redis_server):
    memory = InMemorySpanExporter()
    with _shop(redis_server, memory) as shop:
        shop.handlers()["sign_up"]({"user_id": "user-s"})
        verdict = shop.place_order(_order("order-sync-1"))
        balance = wallet.BALANCES
        left = int(shop.client.hget(balance, "user-s"))
    assert verdict.status == checkout.ACCEPTED
    assert left == 5000 - 240  # accounts booked the withdrawal before the answer
    root = next(s for s in memory.get_finished_spans() if s.attributes.get(checkout.ORDER_ID_ATTRIBUTE))
    spans = [s for s in memory.get_finished_spans() if s.context.trace_id == root.context.trace_id]
    services = {s.resource.attributes["service.name"] for s in spans}
    assert services == {
        service_name(n) for n in ("orders", "inventory", "payments", "shipping", "accounts", "notifications")
    }
    assert root.kind is SpanKind.SERVER and root.parent is None
    assert {s.kind for s in spans} == {SpanKind.SERVER, SpanKind.CLIENT}
    clients = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert all(s.parent.span_id == root.context.span_id for s in clients)


def test_shipping_down_fails_the_order_and_gives_back_stock_and_hold(redis_server):
    memory = InMemorySpanExporter()
    gates = {"shipping": Gate(down=lambda: True)}
    with _shop(redis_server, memory, gates) as shop:
        shop.handlers()["sign_up"]({"user_id": "user-s"})
        before = shop.client.hget(inventory.STOCK_KEY, "sku-apple")
        verdict = shop.place_order(_order("order-sync-2"))
        stock = int(shop.client.hget(inventory.STOCK_KEY, "sku-apple"))
        held = int(shop.client.hget(wallet.HOLDS, "user-s") or 0)
    assert verdict.status == checkout.FAILED and "shipping" in verdict.reason
    assert stock == (inventory.STOCK_START if before is None else int(before))  # the reservation went back
    assert held == 0


def test_a_declined_payment_is_answered_declined(redis_server):
    memory = InMemorySpanExporter()
    with _shop(redis_server, memory) as shop:
        verdict = shop.place_order({**_order("order-sync-3"), "user_id": "user-none"})  # no wallet to pay with
    assert verdict.status == checkout.DECLINED


def test_the_state_is_kept_apart_from_the_event_driven_shop(redis_server):
    memory = InMemorySpanExporter()
    with _shop(redis_server, memory) as shop:
        shop.handlers()["sign_up"]({"user_id": "user-s"})
    assert not redis_server.client().hget(wallet.BALANCES, "user-s")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/handle/shop.orders", b"not json"),
        ("/handle/shop.orders", b"[1, 2]"),
        ("/handle/shop.orders", b'{"type": "shop.order.placed"}'),
        ("/handle/shop.orders", b'{"type": "shop.order.placed", "data": {"lines": "x"}}'),
        ("/commands/sign_up", b'{"nobody": 1}'),
    ],
)
def test_garbage_is_refused_with_400_and_the_service_goes_on(redis_server, path, body):
    memory = InMemorySpanExporter()
    with _shop(redis_server, memory) as shop:
        service = "accounts" if path.startswith("/commands") else "inventory"
        refused = requests.post(shop.urls[service] + path, data=body, timeout=10)
        shop.handlers()["sign_up"]({"user_id": "user-g"})
        verdict = shop.place_order({**_order("order-sync-g"), "user_id": "user-g"})
    assert refused.status_code == 400 and "error" in refused.json()
    assert verdict.status == checkout.ACCEPTED


@pytest.mark.parametrize("body", [b"garbage", b"{}", b'{"order_id": 5}', b"[]"])
def test_orders_refuses_what_is_not_an_order(redis_server, body):
    with _shop(redis_server, InMemorySpanExporter()) as shop:
        refused = requests.post(shop.urls["orders"] + "/orders", data=body, timeout=10)
    assert refused.status_code == 400


def test_the_runner_runs_the_synchronous_shop_beside_under_the_same_seeded_load(redis_server):
    config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_TRACING": "off", "SAMPLE_RATE": "20"})
    stop = threading.Event()
    threading.Timer(2.0, stop.set).start()
    runner = ContinuousRunner(config, [LOAD, *CONSUMER_GROUPS], {}, GroundTruth(), lambda line: None, sync=True)
    issued = runner.run(stop).issued
    assert issued["sync_place_order"] > 0 and issued["place_order"] > 0
    assert issued["sync_sign_up"] > 0  # the same command mix: sign-ups first
