"""Which node owns a sharded channel, and which channels must move, from the cluster's own answers."""

from __future__ import annotations

import json

from redis.crc import key_slot

from collectors.bus.broker_stats import cluster_rows
from collectors.bus.shard_map import ShardMap, moves, nodes_of

A, B, C, A2 = ("127.0.0.1", 7000), ("127.0.0.1", 7001), ("127.0.0.1", 7002), ("127.0.0.1", 7003)
SLOTS = [
    [0, 5460, [b"127.0.0.1", 7000, b"id-a"], [b"127.0.0.1", 7003, b"id-a2"]],
    [5461, 10922, [b"127.0.0.1", 7001, b"id-b"]],
    [10923, 16383, [b"127.0.0.1", 7002, b"id-c"]],
]


def channel_in(low: int, high: int) -> bytes:
    return next(name for i in range(10_000) if low <= key_slot(name := f"ch.{i}".encode()) <= high)


def test_the_owner_is_the_primary_of_the_channel_s_slot():
    shards = ShardMap.from_slots(SLOTS)
    assert shards.owner(channel_in(0, 5460)) == A
    assert shards.owner(channel_in(10923, 16383)) == C
    assert shards.primaries == (A, B, C)
    assert shards.nodes == (A, A2, B, C)
    assert shards.owner(b"{tag}.one") == shards.owner(b"{tag}.two")  # hash tags place channels together


def test_only_channels_whose_owner_changed_move_and_an_unserved_slot_waits():
    on_a, on_b = channel_in(0, 5460), channel_in(5461, 10922)
    subscribed = {on_a: A, on_b: B}
    assert moves(subscribed, [on_a, on_b], ShardMap.from_slots(SLOTS)) == {}
    promoted = ShardMap.from_slots([[0, 5460, [b"127.0.0.1", 7003, b"id-a2"]], *SLOTS[1:]])
    assert moves(subscribed, [on_a, on_b], promoted) == {on_a: A2}
    down = ShardMap.from_slots(SLOTS[1:])  # nobody serves A's slots yet
    assert moves({on_b: B}, [on_a, on_b], down) == {}
    assert moves({}, [on_b], down) == {on_b: B}


def test_garbage_slot_entries_are_skipped():
    assert ShardMap.from_slots([[0, 10], [11, 20, [b"h"]]]).ranges == ()


def test_cluster_nodes_lists_every_node_with_an_address():
    reply = (
        b"id1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n"
        b"id2 127.0.0.1:7003@17003 slave,fail id1 0 0 1 disconnected\n"
        b"id3 :0@0 master,noaddr - 0 0 1 disconnected\n"
        b"garbage\n"
    )
    assert nodes_of(reply) == (A, A2)


def node(role: str, numsub, publish: int, spublish: int, clients=()) -> dict:
    info = {"connected_clients": 2, "used_memory": 10, "pubsub_patterns": 0}
    return {
        "role": role,
        "numpat": 0,
        "numsub": numsub,
        "info": info,
        "publish_calls": publish,
        "spublish_calls": spublish,
        "clients": list(clients),
        "limit": 8192,
    }


def test_one_cluster_sample_sums_the_nodes_and_keeps_each_node_s_figures():
    tap = {"id": "3", "name": "eventscope-bus-tap", "addr": "127.0.0.1:9", "ssub": "2", "omem": "100"}
    answers = {
        "127.0.0.1:7000": node("master", [("orders", 1), ("classic", 1)], 5, 7, [tap]),
        "127.0.0.1:7003": node("slave", [("classic", 1)], 1, 7),  # a replica's SPUBLISH is its primary's
        "127.0.0.1:7001": "ConnectionError: refused",
    }
    rows = cluster_rows(10, answers)
    t, numpat, clients, publish, omem, info = rows["broker_samples"][0]
    assert (t, numpat, clients, publish, omem) == (10, 0, 4, 5 + 7 + 1, 100)
    assert rows["broker_channels"] == [(10, "classic", 2), (10, "orders", 1)]
    assert [(row[2], row[4]) for row in rows["broker_clients"]] == [("eventscope-bus-tap", 2)]

    nodes = json.loads(info)["nodes"]
    assert nodes["127.0.0.1:7001"] == {"up": False, "error": "ConnectionError: refused"}
    assert (nodes["127.0.0.1:7000"]["role"], nodes["127.0.0.1:7000"]["subscribers"]) == ("master", 1)
