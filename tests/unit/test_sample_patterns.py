"""Pure pieces of the sample shop: schemas and upcasting, backoff, the event-sourcing fold, the
deterministic load, the projection lag."""

from __future__ import annotations

import random
import threading

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from sample_system import bus, registry, storefront
from sample_system.retry import RetryPolicy
from sample_system.services import accounts, inventory, order_view, orders, payments

REGISTRY = registry.SchemaRegistry()


def _event(event_type: str, version: int, data) -> dict:
    return {"type": event_type, "dataschema": registry.schema_uri(event_type, version), "data": data}


def test_every_event_type_has_a_schema_and_order_placed_has_two_versions():
    assert REGISTRY.versions("shop.order.placed") == [1, 2]
    for event_type in (
        "shop.stock.reserved",
        "shop.payment.captured",
        "shop.payment.declined",
        "shop.stock.released",
        "shop.order.shipped",
        "shop.user.signed_up",
        "shop.account.opened",
        "shop.account.deposit_made",
        "shop.account.withdrawal_made",
    ):
        assert REGISTRY.latest(event_type) == 1


@pytest.mark.parametrize(
    "event,message",
    [
        (_event("shop.order.placed", 2, {"order_id": "o"}), "data: 'user_id' is a required property"),
        (
            _event("shop.stock.reserved", 1, {"order_id": "o", "user_id": "u", "amount_cents": "9", "currency": "EUR"}),
            "amount_cents: '9' is not of type 'integer'",
        ),
        (_event("shop.order.placed", 7, {}), "v7: no such schema"),
        ({"type": "shop.order.placed", "data": {}}, "dataschema missing"),
    ],
)
def test_invalid_events_are_rejected_with_a_reason(event, message):
    with pytest.raises(registry.SchemaError, match=message):
        REGISTRY.validate(event)


def test_inventory_reacts_to_the_payment_outcomes_payments_publishes():
    assert inventory.PAYMENTS_CHANNEL == payments.CHANNEL and payments.CHANNEL in inventory.CHANNELS
    assert inventory.PAYMENT_CAPTURED == payments.PAYMENT_CAPTURED
    assert set(inventory.PAYMENT_UNPAID) == {payments.PAYMENT_FAILED, payments.PAYMENT_DECLINED}


def test_v1_order_is_upcast_to_a_valid_v2():
    v1 = orders.order_v1({"order_id": "o1", "user_id": "u", "total_cents": 500, "lines": [{"sku": "s", "qty": 2}]})
    event = _event("shop.order.placed", 1, v1)
    assert REGISTRY.validate(event) == 1
    upcast = REGISTRY.upcast(event)
    assert REGISTRY.validate(upcast) == 2
    assert upcast["data"]["total"] == {"amount_cents": 500, "currency": "EUR"}
    assert upcast["data"]["lines"] == [{"sku": "s", "qty": 2, "unit_price_cents": 250}]
    v2 = _event(
        "shop.order.placed", 2, orders.order_v2({"order_id": "o", "user_id": "u", "lines": [], "total_cents": 1})
    )
    assert REGISTRY.upcast(v2) is v2


def test_backoff_grows_by_the_factor_up_to_the_cap_and_jitter_stays_in_bounds():
    policy = RetryPolicy(max_attempts=6, base_ms=10, factor=3, max_ms=200, jitter=0.5)
    assert [policy.ceiling_ms(n) for n in range(1, 6)] == [10, 30, 90, 200, 200]
    rng = random.Random(1)
    for attempt in range(1, 6):
        delay = policy.delay_ms(attempt, rng)
        assert policy.ceiling_ms(attempt) * 0.5 <= delay <= policy.ceiling_ms(attempt)
    assert RetryPolicy(jitter=0).delay_ms(3, rng) == 80


def test_the_fold_gives_balances_and_ignores_unknown_events():
    stored = [
        (accounts.ACCOUNT_OPENED, "a", 0),
        (accounts.DEPOSIT_MADE, "a", 500),
        (accounts.WITHDRAWAL_MADE, "a", 120),
        (accounts.ACCOUNT_OPENED, "b", 0),
        ("shop.account.renamed", "a", 0),
        (accounts.ACCOUNT_OPENED, "a", 0),  # opening twice changes nothing
    ]
    assert accounts.fold(stored) == {"a": 380, "b": 0}
    assert accounts.fold(stored[:2]) == {"a": 500}


def test_load_is_deterministic_for_a_seed_and_orders_come_from_signed_up_users():
    def take(seed, n=60):
        stream = storefront.commands(seed)
        return [next(stream) for _ in range(n)]

    assert take(3) == take(3) and take(3) != take(4)
    users: set[str] = set()
    for name, command in take(3, 300):
        if name == storefront.SIGN_UP:
            users.add(command["user_id"])
        else:
            assert command["user_id"] in users
    kinds = {name for name, _ in take(3, 300)}
    assert kinds == {storefront.SIGN_UP, storefront.TOP_UP, storefront.PLACE_ORDER}


def test_bursts_add_commands_at_once():
    calls: list[dict] = []
    handlers = dict.fromkeys((storefront.SIGN_UP, storefront.TOP_UP, storefront.PLACE_ORDER), calls.append)
    stop = threading.Event()
    threading.Timer(0.35, stop.set).start()
    issued = storefront.run_load(handlers, rate=10, seed=1, stop=stop, burst_every_s=0.1, burst_size=5)
    assert issued.total() == len(calls) >= 3 * 5


def test_projection_lag_is_now_minus_event_time():
    assert order_view.lag_ms("2026-01-01T00:00:01Z", 1767225601_250_000_000) == pytest.approx(250)
    assert order_view.lag_ms("not a time", 0) is None and order_view.lag_ms(None, 0) is None


def test_partitions_and_legacy_share_are_stable():
    assert bus.partition_of("order-1") == bus.partition_of("order-1")
    assert {bus.partition_of(f"order-{n}") for n in range(100)} == {"p0", "p1", "p2", "p3"}
    share = sum(orders.is_legacy(f"order-{n}", 0.3) for n in range(2000)) / 2000
    assert 0.25 < share < 0.35


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(-5, 5, allow_nan=False)
    | st.text(max_size=4)
    | st.sampled_from(["EUR", "eur", "", "sku-1"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "order_id",
                    "user_id",
                    "lines",
                    "sku",
                    "qty",
                    "unit_price_cents",
                    "total",
                    "amount_cents",
                    "currency",
                    "total_cents",
                    "x",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(data=JSON_VALUES, key=st.sampled_from(sorted(REGISTRY._validators)))
def test_the_compiled_check_agrees_with_jsonschema(data, key):
    validator = REGISTRY._validators[key]
    check = registry.compile_check(validator.schema)
    assert check is not None
    assert check(data) == validator.is_valid(data)


def test_load_carries_on_while_redis_is_unreachable():
    failures = iter([True, True, False, False, False])

    def place(command: dict) -> None:
        if next(failures, False):
            raise redis.ConnectionError("connection refused")

    handlers = dict.fromkeys((storefront.SIGN_UP, storefront.TOP_UP, storefront.PLACE_ORDER), place)
    issued = storefront.run_load(handlers, rate=0, seed=1, stop=threading.Event(), limit=5)
    assert issued["failed"] == 2 and issued.total() == 5 and "unreachable" not in issued
