"""The bus tap's connections to a Redis Cluster: one PSUBSCRIBE for classic channels, one SSUBSCRIBE per shard owner.

Classic ``PUBLISH`` is broadcast to every node, so the tap pattern-subscribes on one node only (the URL's
node first, any other node when that one is lost): each message is counted once. A sharded message
(``SPUBLISH``) reaches only the subscribers of its shard, and Redis has no pattern form of ``SSUBSCRIBE``,
so the tap subscribes to each sharded channel by name at the primary that owns its slot. The channels are
those named in the configuration, plus those that ``PUBSUB SHARDCHANNELS <pattern>`` lists on any primary
for one of the tap's patterns (a channel someone subscribes to), asked every ``RECONCILE_S``.

Each pass also reads ``CLUSTER SLOTS`` and moves the channels whose owner changed: after a failover (the
lost primary's connection fails, its replica is promoted) and after a slot migration (Redis ends the
subscriptions of a moved slot with ``SUNSUBSCRIBE``), the channel is subscribed again at its new owner.
While a shard has no reachable owner only its channels go unseen; the other shards' subscriptions stay,
so the loss shows as exactly the gap the outage caused.
"""

from __future__ import annotations

import select
import time
from collections.abc import Sequence

from collectors.backoff import REDIS_ERRORS, RedisLink
from collectors.bus.cluster_nodes import address_text, node_client, node_options, slot_map
from collectors.bus.shard_map import Address, ShardMap, moves

RECONCILE_S = 1.0  # how often shard channels are discovered and the slot map compared
RETRY_S = 0.2  # how soon after a lost node the map is read again (a failover takes about two node timeouts)
DATA_MESSAGES = ("pmessage", "smessage", "message")
_IDLE_SLEEP_S = 0.01


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class NodeFeed:
    """One node's Pub/Sub connection: the tap's subscriptions there. Never reconnects by itself: the tap
    decides where a lost node's channels go."""

    def __init__(self, address: Address, options: dict, client_name: str):
        self.address = address
        self.client = node_client(address, options, client_name=client_name)
        self.pubsub = self.client.pubsub()
        self.channels: set[bytes] = set()
        self.leaving: set[bytes] = set()  # unsubscribed by the tap: their SUNSUBSCRIBE is not a moved slot

    def socket(self) -> object | None:
        connection = self.pubsub.connection
        return getattr(connection, "_sock", None) if connection is not None else None

    def close(self) -> None:
        for closing in (self.pubsub.close, self.client.close):
            try:
                closing()
            except REDIS_ERRORS:
                pass


class ClusterFeeds:
    """Every connection the tap holds to a cluster; ``next_message`` reads them in turn and keeps them placed."""

    def __init__(
        self, redis_url: str, patterns: Sequence[str], shard_channels: Sequence[str], link: RedisLink, client_name: str
    ):
        self._seed, self._options = node_options(redis_url)
        self._patterns = list(patterns)
        self._named = {_bytes(channel) for channel in shard_channels}
        self._link = link
        self._client_name = client_name
        self._shards = ShardMap((), ())
        self._nodes: dict[Address, NodeFeed] = {}
        self._classic: NodeFeed | None = None
        self._subscribed: dict[bytes, Address] = {}
        self._discovered: set[bytes] = set()
        self._ready: list[NodeFeed] = []  # connections to read before waiting again
        self._due = 0.0

    def status(self) -> dict:
        """Where the tap listens now, for /api/v1/health."""
        return {
            "classic_node": address_text(self._classic.address) if self._classic else None,
            "shard_owners": sorted(address_text(address) for address in self._nodes if self._nodes[address].channels),
            "shard_channels": sorted(_text(channel) for channel in self._subscribed),
            "unplaced_shard_channels": sorted(_text(c) for c in self.wanted() - self._subscribed.keys()),
        }

    def wanted(self) -> set[bytes]:
        """Every sharded channel the tap means to hear: the configured ones and the discovered ones."""
        return self._named | self._discovered

    def close(self) -> None:
        for feed in {id(f): f for f in [*self._nodes.values(), self._classic] if f is not None}.values():
            feed.close()
        self._nodes.clear()
        self._classic = None
        self._subscribed.clear()

    def next_message(self, timeout: float) -> dict | None:
        """The next data message from any node, or None after waiting up to ``timeout`` for one.

        Only the connections that have something to read are read (what select() found, and the one that
        gave the last message, whose parser may hold more): an empty non-blocking read costs a failed recv.
        """
        if time.monotonic() >= self._due:
            self.reconcile()
            self._ready = self._feeds()  # new subscriptions: their confirmations wait in every connection
        waited = False
        while True:
            while self._ready:
                message = self._read(self._ready[-1])
                if message is not None:
                    return message
                self._ready.pop()
            if waited:
                return None
            self._ready = self._wait(self._feeds(), min(timeout, max(0.0, self._due - time.monotonic())))
            waited = True

    def _feeds(self) -> list[NodeFeed]:
        feeds = list(self._nodes.values())
        return feeds + [self._classic] if self._classic is not None else feeds

    def _read(self, feed: NodeFeed) -> dict | None:
        """The feed's next data message, past any (un)subscribe replies; None when it has nothing now."""
        while True:
            try:
                message = feed.pubsub.get_message(ignore_subscribe_messages=False, timeout=0)
            except REDIS_ERRORS as exc:
                self._lost(feed, exc)
                return None
            if message is None or message["type"] in DATA_MESSAGES:
                return message
            if message["type"] == "sunsubscribe":
                self._ended(feed, _bytes(message["channel"]))

    def _ended(self, feed: NodeFeed, channel: bytes) -> None:
        """A shard subscription ended: by the tap, or by Redis because the slot moved (place it again now)."""
        feed.channels.discard(channel)
        if channel in feed.leaving:
            feed.leaving.discard(channel)
            return
        if self._subscribed.get(channel) == feed.address:
            del self._subscribed[channel]
        self._due = time.monotonic()

    @staticmethod
    def _wait(feeds: list[NodeFeed], seconds: float) -> list[NodeFeed]:
        """Wait up to ``seconds`` for any connection to have something; the feeds to read now."""
        sockets = [feed.socket() for feed in feeds]
        if not feeds or any(sock is None for sock in sockets):
            time.sleep(min(seconds, _IDLE_SLEEP_S))
            return feeds
        try:
            readable = set(select.select(sockets, [], [], seconds)[0])
        except (OSError, ValueError):  # a socket closed under us: the next read says which
            return feeds
        return [feed for feed, sock in zip(feeds, sockets, strict=True) if sock in readable]

    def _lost(self, feed: NodeFeed, exc: BaseException) -> None:
        """A node's connection failed: its channels wait for the next map (a promoted replica, or the node back)."""
        feed.close()
        if self._nodes.get(feed.address) is feed:
            del self._nodes[feed.address]
        if self._classic is feed:
            self._classic = None
        for channel in [c for c, address in self._subscribed.items() if address == feed.address]:
            del self._subscribed[channel]
        self._link.lost(exc)
        self._due = min(self._due, time.monotonic() + RETRY_S)

    # Placing the subscriptions --------------------------------------------------------------------

    def reconcile(self) -> None:
        """Read the slot map, discover sharded channels, and subscribe whatever is not where it belongs.

        Raises a Redis error only when no node of the cluster answers (the tap then starts over).
        """
        self._shards = slot_map(self._candidates(), self._options)
        self._discovered = self._discover()
        if self._classic is None:
            self._open_classic()
        for channel, owner in moves(self._subscribed, self.wanted(), self._shards).items():
            self._place(channel, owner)
        placed = self._classic is not None and self.wanted() <= self._subscribed.keys()
        if placed:
            self._link.up()
        self._due = time.monotonic() + (RECONCILE_S if placed else RETRY_S)

    def _candidates(self) -> list[Address]:
        known = [self._seed, *self._shards.nodes]
        return list(dict.fromkeys(known))

    def _ask(self, address: Address, *command: object) -> object:
        with node_client(address, self._options) as client:
            return client.execute_command(*command)

    def _discover(self) -> set[bytes]:
        found: set[bytes] = set()
        for primary in self._shards.primaries:
            for pattern in self._patterns:
                try:
                    found.update(_bytes(c) for c in self._ask(primary, "PUBSUB", "SHARDCHANNELS", pattern))
                except REDIS_ERRORS:
                    continue  # a lost primary: its channels are found again at its successor
        return found

    def _open_classic(self) -> None:
        for address in self._candidates():
            feed = NodeFeed(address, self._options, self._client_name)
            try:
                feed.pubsub.psubscribe(*self._patterns)
            except REDIS_ERRORS as exc:
                feed.close()
                self._link.lost(exc)
                continue
            self._classic = feed
            return

    def _place(self, channel: bytes, owner: Address) -> None:
        old = self._nodes.get(self._subscribed.pop(channel, None))  # type: ignore[arg-type]
        if old is not None and channel in old.channels:
            old.leaving.add(channel)
            try:
                old.pubsub.sunsubscribe(channel)
            except REDIS_ERRORS as exc:
                self._lost(old, exc)
        feed = self._nodes.get(owner)
        try:
            if feed is None:
                feed = self._nodes[owner] = NodeFeed(owner, self._options, self._client_name)
            feed.pubsub.ssubscribe(channel)
        except REDIS_ERRORS as exc:
            if feed is not None:
                self._lost(feed, exc)
            return
        feed.channels.add(channel)
        self._subscribed[channel] = owner
