"""The shop on a Redis Cluster: which client to open, and which node owns each of its sharded channels.

On a cluster (``EVENTSCOPE_REDIS_CLUSTER=1``, ``REDIS_URL`` naming any node) the shop's events go on sharded
channels: a producer SPUBLISHes through a ``RedisCluster`` client, which sends each to the shard owning the
channel's slot, and a consumer group SSUBSCRIBEs to each channel at that shard's primary (one connection per
owner). The shop's keys all carry the hash tag ``{sample}``, so its transactions and scripts, which touch
several keys at once, stay on one slot.
"""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster
from redis.exceptions import ClusterDownError, MovedError, TryAgainError

Address = tuple[str, int]
SHARD_MOVES = (MovedError, ClusterDownError, TryAgainError)
"""What a subscriber hears while its shard changes owner: it subscribes again at the new one."""


def connect(redis_url: str, cluster: bool, **options: object) -> redis.Redis | RedisCluster:
    """A client of the shop's Redis: a cluster client that routes by slot, or a plain one."""
    if cluster:
        return RedisCluster.from_url(redis_url, **options)
    return redis.Redis.from_url(redis_url, **options)


def owners(client: RedisCluster, channels: list[str]) -> dict[Address, list[str]]:
    """The channels by the primary that owns each one's slot, read from a fresh slot map (after a failover
    the old owner is gone)."""
    client.nodes_manager.initialize()
    found: dict[Address, list[str]] = {}
    for channel in channels:
        node = client.get_node_from_key(channel)
        found.setdefault((node.host, int(node.port)), []).append(channel)
    return found
