"""Reaching every node of a Redis Cluster from one URL: the tap and the broker poller both start from any node.

The URL names one node; its credentials and TLS settings are used for every node. The cluster's own
``CLUSTER SLOTS`` answer, asked of any node that replies (the URL's first), names the others. Clients made
here never retry or reconnect by themselves: the caller decides what a lost node means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import redis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from collectors.backoff import REDIS_ERRORS
from collectors.bus.shard_map import Address, ShardMap, nodes_of

CONNECT_TIMEOUT_S = 2.0
REPLY_TIMEOUT_S = 5.0
DEFAULT_PORT = 6379


def node_options(redis_url: str) -> tuple[Address, dict]:
    """The URL's node and the connection options every node shares (credentials, TLS; never a database)."""
    parsed = parse_url(redis_url)
    seed = (str(parsed.get("host", "127.0.0.1")), int(parsed.get("port", DEFAULT_PORT)))
    options = {k: v for k, v in parsed.items() if k not in ("host", "port", "db")}
    return seed, {**options, "socket_connect_timeout": CONNECT_TIMEOUT_S}


def node_client(address: Address, options: dict, **extra: object) -> redis.Redis:
    """A client of one node that fails at once instead of retrying."""
    return redis.Redis(**options, host=address[0], port=address[1], retry=Retry(NoBackoff(), 0), **extra)


def address_text(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


def slot_map(candidates: Iterable[Address], options: dict) -> ShardMap:
    """``CLUSTER SLOTS`` from the first candidate that answers; the last error when none does."""
    error: BaseException | None = None
    for address in candidates:
        try:
            with node_client(address, options, socket_timeout=REPLY_TIMEOUT_S) as client:
                return ShardMap.from_slots(client.execute_command("CLUSTER", "SLOTS"))
        except REDIS_ERRORS as exc:
            error = exc
    raise error if error is not None else redis.ConnectionError("no cluster node to ask")


class ClusterNodes:
    """Every node of a cluster, one client each (kept between calls, dropped when it fails)."""

    def __init__(self, redis_url: str, client_name: str):
        self.seed, self._options = node_options(redis_url)
        self._client_name = client_name
        self.shards = ShardMap((), ())
        self._clients: dict[Address, redis.Redis] = {}

    def candidates(self) -> list[Address]:
        """The URL's node, then every node the last map named."""
        return list(dict.fromkeys([self.seed, *self.shards.nodes]))

    def refresh(self) -> ShardMap:
        self.shards = slot_map(self.candidates(), self._options)
        return self.shards

    def all_nodes(self) -> tuple[Address, ...]:
        """Every node ``CLUSTER NODES`` lists, from the first node that answers (replicas still syncing, and
        failed nodes, included: CLUSTER SLOTS leaves those out)."""
        for address in self.candidates():
            try:
                return nodes_of(self._client(address).execute_command("CLUSTER", "NODES"))
            except REDIS_ERRORS:
                self._drop(address)
        return self.shards.nodes

    def ask_all(self, question: Callable[[redis.Redis], object]) -> dict[str, object]:
        """``question(client)`` of every node (``address -> answer``, or the error text of a node that failed).

        Raises the Redis error when no node answers at all.
        """
        self.refresh()
        answers: dict[str, object] = {}
        for address in self.all_nodes():
            try:
                answers[address_text(address)] = question(self._client(address))
            except REDIS_ERRORS as exc:
                self._drop(address)
                answers[address_text(address)] = f"{type(exc).__name__}: {exc}"
        return answers

    def _client(self, address: Address) -> redis.Redis:
        if address not in self._clients:
            self._clients[address] = node_client(
                address, self._options, socket_timeout=REPLY_TIMEOUT_S, client_name=self._client_name
            )
        return self._clients[address]

    def _drop(self, address: Address) -> None:
        client = self._clients.pop(address, None)
        if client is not None:
            client.close()

    def close(self) -> None:
        for address in list(self._clients):
            self._drop(address)
