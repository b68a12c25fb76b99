"""Broker stats: parsing Redis's answers and the /api/v1/broker shape from stored samples."""

from __future__ import annotations

import json

import pytest

from collectors.bus.broker_stats import pubsub_hard_limit, sample_rows, snapshot
from collectors.storage.store import Store


@pytest.mark.parametrize(
    "config,limit",
    [
        ("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", 33554432),
        ("normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60", 32 * 1024 * 1024),
        ("normal 0 0 0 slave 0 0 0 pubsub 0 0 0", None),
        ("pubsub 1k 1k 1", 1000),
        ("", None),
        ("pubsub", None),
    ],
)
def test_the_pubsub_hard_limit_is_read_from_the_config_line(config, limit):
    assert pubsub_hard_limit(config) == limit


CLIENTS = [
    {"id": "7", "name": "inventory", "addr": "127.0.0.1:5", "sub": "2", "psub": "0", "omem": "4096"},
    {"id": "8", "name": "", "addr": "127.0.0.1:6", "sub": "0", "psub": "1", "omem": "0"},
    {"id": "9", "name": "poller", "addr": "127.0.0.1:7", "sub": "0", "psub": "0", "omem": "99999"},
]


def sample(t_ns: int, publish_calls: int, omem: str = "4096") -> dict:
    clients = [dict(CLIENTS[0], omem=omem), *CLIENTS[1:]]
    info = {"connected_clients": 3, "used_memory": 100}
    return sample_rows(t_ns, 1, [("shop.orders", 2)], info, publish_calls, clients, 8192)


def test_only_subscribers_are_kept_and_the_largest_buffer_is_the_sample_s_omem_max():
    rows = sample(10, 5)
    assert [row[1] for row in rows["broker_clients"]] == [7, 8]
    assert rows["broker_samples"][0][:5] == (10, 1, 3, 5, 4096)
    assert rows["broker_channels"] == [(10, "shop.orders", 2)]


@pytest.fixture
def store():
    store = Store(":memory:")
    yield store
    store.close()


def write(store: Store, rows: dict) -> None:
    for table, table_rows in rows.items():
        if table_rows:
            store.write(table, table_rows)


def test_snapshot_has_the_contract_shape_with_rates_from_counter_deltas(store):
    second = 1_000_000_000
    write(store, sample(1 * second, 100))
    write(store, sample(3 * second, 300, omem="6144"))
    write(store, sample(4 * second, 10))  # Redis restarted: the counter went back
    cursor = store.cursor()
    try:
        answer = snapshot(cursor, None, None)
        window = snapshot(cursor, 2 * second, 3 * second)
        empty = snapshot(cursor, 10 * second, None)
    finally:
        cursor.close()
    assert [(s["t_ns"], s["messages_per_s"], s["clients"], s["omem_max"]) for s in answer["series"]] == [
        (1 * second, 0.0, 3, 4096),
        (3 * second, 100.0, 3, 6144),
        (4 * second, 0.0, 3, 4096),
    ]
    latest = answer["latest"]
    assert (latest["t_ns"], latest["numpat"]) == (4 * second, 1)
    assert latest["channels"] == [{"channel": "shop.orders", "subscribers": 2}]
    assert latest["clients"][0] == {
        "id": 7,
        "name": "inventory",
        "addr": "127.0.0.1:5",
        "sub": 2,
        "psub": 0,
        "omem": 4096,
        "limit_bytes": 8192,
        "fraction": 0.5,
    }
    assert latest["info"] == {"connected_clients": 3, "used_memory": 100}
    assert window["latest"]["t_ns"] == 3 * second
    assert [s["messages_per_s"] for s in window["series"]] == [100.0]
    assert empty == {"latest": None, "series": []}
    json.dumps(answer)
