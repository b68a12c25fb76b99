"""Which node of a Redis Cluster owns a sharded channel, from the cluster's own answer (``CLUSTER SLOTS``).

A sharded channel lives on the shard that owns its hash slot (CRC16 of the channel, or of its ``{hash tag}``,
mod 16384), like a key. The map is plain data built from one reply, so the tap can compare the map it
subscribed by with a fresh one and move exactly the channels whose owner changed (a failover or a slot
migration). No I/O here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from redis.crc import key_slot

Address = tuple[str, int]


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


@dataclasses.dataclass(frozen=True)
class ShardMap:
    """Slot ranges with their primary, and every node the cluster named (primaries and replicas)."""

    ranges: tuple[tuple[int, int, Address], ...]
    nodes: tuple[Address, ...]

    @classmethod
    def from_slots(cls, reply: Sequence) -> ShardMap:
        """Read ``CLUSTER SLOTS``: ``[[start, end, [host, port, id, ...] (primary), [replica] ...], ...]``."""
        ranges, nodes = [], []
        for entry in reply:
            start, end, *servers = entry
            addresses = [(_text(server[0]), int(server[1])) for server in servers if len(server) >= 2]
            if not addresses:
                continue
            ranges.append((int(start), int(end), addresses[0]))
            nodes += [address for address in addresses if address not in nodes]
        return cls(tuple(sorted(ranges)), tuple(nodes))

    @property
    def primaries(self) -> tuple[Address, ...]:
        found: list[Address] = []
        for _, _, primary in self.ranges:
            if primary not in found:
                found.append(primary)
        return tuple(found)

    def owner(self, channel: bytes) -> Address | None:
        """The primary that serves ``channel``'s slot, or None while no node serves it."""
        slot = key_slot(channel)
        for start, end, primary in self.ranges:
            if start <= slot <= end:
                return primary
        return None


def moves(subscribed: dict[bytes, Address], wanted: Iterable[bytes], shards: ShardMap) -> dict[bytes, Address]:
    """The channels to (re)subscribe and where: each wanted channel not subscribed at its owner now.

    A channel whose slot nobody serves (its primary failed and no replica took over yet) is left out: it
    waits for the next map.
    """
    return {
        channel: owner
        for channel in wanted
        if (owner := shards.owner(channel)) is not None and owner != subscribed.get(channel)
    }


SKIPPED_FLAGS = {"noaddr", "handshake"}  # a node the cluster cannot name an address for yet


def nodes_of(reply: bytes | str) -> tuple[Address, ...]:
    """Every node ``CLUSTER NODES`` lists (``id ip:port@bus flags ...`` per line), failed ones included."""
    found: list[Address] = []
    for line in _text(reply).splitlines():
        words = line.split()
        if len(words) < 3 or SKIPPED_FLAGS & set(words[2].split(",")):
            continue
        host, _, port = words[1].split("@")[0].rpartition(":")
        if host and port.isdigit() and (host, int(port)) not in found:
            found.append((host, int(port)))
    return tuple(found)
