"""Broker stats: what Redis itself says about Pub/Sub, polled and kept as a time series.

Every poll reads ``PUBSUB CHANNELS`` / ``NUMSUB`` / ``NUMPAT``, ``INFO`` (stats, clients, memory,
commandstats), ``CLIENT LIST`` and ``CONFIG GET client-output-buffer-limit``, so each subscriber's
output buffer (``omem``) can be watched against the pubsub hard limit: a slow subscriber that
reaches it is disconnected by Redis and loses messages. The poller reconnects by itself; while
Redis is away there are no samples, and the series shows that as a gap. ``snapshot`` serves
``/api/v1/broker`` from the stored series.

On a Redis Cluster every node the cluster names (``CLUSTER SLOTS``: primaries and replicas) is polled,
and one sample sums them: a channel's subscribers are those of every node (classic and sharded), the
publish count adds each node's ``PUBLISH`` calls and each primary's ``SPUBLISH`` calls, and ``Info``
holds each node's own figures under ``nodes`` (a node that does not answer is there with its error).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping

import redis

from collectors.backoff import RedisLink, keep_connected
from collectors.bus.cluster_nodes import ClusterNodes
from collectors.storage.reader import Reader

CLIENT_NAME = "eventscope-broker-stats"
INFO_SECTIONS = ("stats", "clients", "memory")
PUBLISH_STAT = "cmdstat_publish"
SPUBLISH_STAT = "cmdstat_spublish"
PRIMARY = "master"  # how INFO replication and ROLE name a primary
NODE_FIELDS = ("connected_clients", "used_memory", "pubsub_channels", "pubsub_patterns", "pubsub_shardchannels")
OUTPUT_BUFFER_LIMIT = "client-output-buffer-limit"


def pubsub_hard_limit(config_value: str) -> int | None:
    """The pubsub class's hard limit in bytes from ``client-output-buffer-limit``; None for 0 (no limit)."""
    words = config_value.split()
    for index in range(0, len(words) - 3, 4):
        if words[index].lower() == "pubsub":
            limit = _bytes(words[index + 1])
            return limit or None
    return None


_UNITS = {"k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def _bytes(text: str) -> int:
    lowered = text.lower()
    for unit in ("kb", "mb", "gb", "k", "m", "g"):
        if lowered.endswith(unit) and lowered[: -len(unit)].isdigit():
            return int(lowered[: -len(unit)]) * _UNITS[unit]
    return int(lowered) if lowered.isdigit() else 0


def _int(value: object) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def is_subscriber(client: Mapping[str, object]) -> bool:
    """A CLIENT LIST entry that holds channel, pattern or sharded channel subscriptions."""
    return _int(client.get("sub")) > 0 or _int(client.get("psub")) > 0 or _int(client.get("ssub")) > 0


def sample_rows(
    t_ns: int,
    numpat: int,
    numsub: list[tuple[str, int]],
    info: Mapping[str, object],
    publish_calls: int | None,
    clients: list[Mapping[str, object]],
    limit: int | None,
) -> dict[str, list[tuple]]:
    """Rows for broker_samples, broker_channels and broker_clients from one poll's answers."""
    subscribers = [c for c in clients if is_subscriber(c)]
    client_rows = [
        (
            t_ns,
            _int(c.get("id")),
            str(c.get("name") or ""),
            str(c.get("addr") or ""),
            _int(c.get("sub")) + _int(c.get("ssub")),  # a sharded subscription is a channel subscription
            _int(c.get("psub")),
            _int(c.get("omem")),
            limit,
        )
        for c in subscribers
    ]
    omem_max = max((row[6] for row in client_rows), default=0)
    sample = (t_ns, numpat, _int(info.get("connected_clients")), publish_calls, omem_max, json.dumps(info, default=str))
    return {
        "broker_samples": [sample],
        "broker_channels": [(t_ns, channel, count) for channel, count in numsub],
        "broker_clients": client_rows,
    }


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def poll(client: redis.Redis) -> dict[str, list[tuple]]:
    """Ask Redis once; rows for the three broker tables."""
    channels = [_text(c) for c in client.pubsub_channels()]
    numsub = [(_text(c), int(n)) for c, n in client.pubsub_numsub(*channels)] if channels else []
    info: dict[str, object] = {}
    for section in INFO_SECTIONS:
        info.update(client.info(section))
    publish = client.info("commandstats").get(PUBLISH_STAT, {})
    limits = client.config_get(OUTPUT_BUFFER_LIMIT)
    limit = pubsub_hard_limit(_text(next(iter(limits.values()), "")))
    return sample_rows(
        time.time_ns(),
        int(client.pubsub_numpat()),
        numsub,
        info,
        _int(publish.get("calls")) if publish else 0,
        client.client_list(),
        limit,
    )


def ask_node(client: redis.Redis) -> dict:
    """One cluster node's answers: its role, channels (classic and sharded) with subscribers, INFO, clients."""
    channels = [_text(c) for c in client.pubsub_channels()]
    shard_channels = [_text(c) for c in client.execute_command("PUBSUB", "SHARDCHANNELS")]
    numsub = [(_text(c), int(n)) for c, n in client.pubsub_numsub(*channels)] if channels else []
    if shard_channels:
        reply = client.execute_command("PUBSUB", "SHARDNUMSUB", *shard_channels)
        numsub += [(_text(reply[i]), int(reply[i + 1])) for i in range(0, len(reply) - 1, 2)]
    info: dict[str, object] = {}
    for section in (*INFO_SECTIONS, "replication"):
        info.update(client.info(section))
    calls = client.info("commandstats")
    limits = client.config_get(OUTPUT_BUFFER_LIMIT)
    return {
        "role": str(info.get("role", "")),
        "numpat": int(client.pubsub_numpat()),
        "numsub": numsub,
        "info": info,
        "publish_calls": _int(calls.get(PUBLISH_STAT, {}).get("calls")),
        "spublish_calls": _int(calls.get(SPUBLISH_STAT, {}).get("calls")),
        "clients": client.client_list(),
        "limit": pubsub_hard_limit(_text(next(iter(limits.values()), ""))),
    }


def cluster_rows(t_ns: int, answers: Mapping[str, dict | str]) -> dict[str, list[tuple]]:
    """One sample from every node's answers (``address -> ask_node() answer``, or the error text of a node that
    did not answer): subscribers and calls summed, each node's own figures under ``Info.nodes``."""
    answered = {address: answer for address, answer in answers.items() if isinstance(answer, dict)}
    subscribers: dict[str, int] = {}
    for answer in answered.values():
        for channel, count in answer["numsub"]:
            subscribers[channel] = subscribers.get(channel, 0) + count
    calls = sum(a["publish_calls"] + (a["spublish_calls"] if a["role"] == PRIMARY else 0) for a in answered.values())
    clients = [(c, a["limit"]) for a in answered.values() for c in a["clients"]]
    rows = sample_rows(
        t_ns,
        sum(a["numpat"] for a in answered.values()),
        sorted(subscribers.items()),
        {"connected_clients": sum(_int(a["info"].get("connected_clients")) for a in answered.values())},
        calls,
        [client for client, _ in clients],
        max((limit for _, limit in clients if limit), default=None),
    )
    nodes = {address: _node_figures(answer) for address, answer in sorted(answers.items())}
    t, numpat, connected, publish, omem, _ = rows["broker_samples"][0]
    rows["broker_samples"] = [(t, numpat, connected, publish, omem, json.dumps({"nodes": nodes}, default=str))]
    return rows


def _node_figures(answer: dict | str) -> dict:
    if not isinstance(answer, dict):
        return {"up": False, "error": answer}
    subscribers = [c for c in answer["clients"] if is_subscriber(c)]
    return {
        "up": True,
        "role": answer["role"],
        **{field: answer["info"].get(field) for field in NODE_FIELDS},
        "numpat": answer["numpat"],
        "publish_calls": answer["publish_calls"],
        "spublish_calls": answer["spublish_calls"],
        "subscribers": len(subscribers),
        "omem_max": max((_int(c.get("omem")) for c in subscribers), default=0),
    }


class BrokerStats:
    """Runs in its own thread (supervised): polls every ``interval_s`` and hands the rows to ``sink``."""

    def __init__(
        self,
        redis_url: str,
        interval_s: float,
        sink: Callable[[dict[str, list[tuple]]], None],
        *,
        cluster: bool = False,
    ):
        self._redis_url = redis_url
        self._cluster = cluster
        self._interval_s = interval_s
        self._sink = sink
        self.link = RedisLink("broker stats")
        self.samples = 0
        self.last_sample_ns: int | None = None
        self.nodes: dict[str, bool] | None = None  # on a cluster: each node and whether it answered the last poll

    def status(self) -> dict:
        """The poller's state, for /api/v1/health."""
        return {
            "connected": self.link.connected,
            "state": self.link.state,
            "interval_s": self._interval_s,
            "samples": self.samples,
            "reconnects": self.link.reconnects,
            "last_sample_ns": self.last_sample_ns,
            "last_error": self.link.last_error,
            "nodes": self.nodes,
        }

    def problems(self) -> list[str]:
        """Why the poller is not sampling now."""
        problem = self.link.problem()
        return [problem] if problem else []

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set, reconnecting with backoff when Redis goes away or refuses a command."""
        keep_connected(stop, self.link, self._poll_forever)

    def _poll_forever(self, stop: threading.Event) -> None:
        if self._cluster:
            self._poll_cluster_forever(stop)
            return
        client = redis.Redis.from_url(
            self._redis_url, socket_connect_timeout=2, socket_timeout=5, client_name=CLIENT_NAME
        )
        try:
            while not stop.is_set():
                rows = poll(client)
                self.link.up()
                self._sink(rows)
                self.samples += 1
                self.last_sample_ns = rows["broker_samples"][0][0]
                stop.wait(self._interval_s)
        finally:
            client.close()

    def _poll_cluster_forever(self, stop: threading.Event) -> None:
        nodes = ClusterNodes(self._redis_url, CLIENT_NAME)
        try:
            while not stop.is_set():
                answers = nodes.ask_all(ask_node)
                rows = cluster_rows(time.time_ns(), answers)
                self.link.up()
                self._sink(rows)
                self.samples += 1
                self.last_sample_ns = rows["broker_samples"][0][0]
                self.nodes = {address: isinstance(answer, dict) for address, answer in answers.items()}
                stop.wait(self._interval_s)
        finally:
            nodes.close()


_SERIES = """
SELECT TimeNs, Clients, OmemMax, PublishCalls - PrevCalls AS Published, TimeNs - PrevNs AS Elapsed
FROM (SELECT TimeNs, Clients, OmemMax, PublishCalls,
             lag(PublishCalls) OVER (ORDER BY TimeNs) AS PrevCalls, lag(TimeNs) OVER (ORDER BY TimeNs) AS PrevNs
      FROM broker_samples)
WHERE TimeNs >= ? AND TimeNs <= ?
ORDER BY TimeNs
"""
_LATEST = (
    "SELECT TimeNs, NumPat, Info FROM broker_samples WHERE TimeNs >= ? AND TimeNs <= ? ORDER BY TimeNs DESC LIMIT 1"
)
_CHANNELS = "SELECT Channel, Subscribers FROM broker_channels WHERE TimeNs = ? ORDER BY Channel"
_CLIENTS = "SELECT Id, Name, Addr, Sub, Psub, Omem, LimitBytes FROM broker_clients WHERE TimeNs = ? ORDER BY Id"
NS_PER_S = 1_000_000_000
_MAX_NS = 2**63 - 1


def _rate(published: int | None, elapsed_ns: int | None) -> float:
    """Messages per second between two samples; 0 after a Redis restart reset the counter."""
    if published is None or not elapsed_ns or published < 0:
        return 0.0
    return published * NS_PER_S / elapsed_ns


def _client(row: tuple) -> dict:
    client_id, name, addr, sub, psub, omem, limit = row
    return {
        "id": client_id,
        "name": name,
        "addr": addr,
        "sub": sub,
        "psub": psub,
        "omem": omem,
        "limit_bytes": limit,
        "fraction": omem / limit if limit else None,
    }


def _latest(cursor: Reader, since: int, until: int) -> dict | None:
    row = cursor.execute(_LATEST, [since, until]).fetchone()
    if row is None:
        return None
    t_ns, numpat, info = row
    return {
        "t_ns": t_ns,
        "numpat": numpat,
        "channels": [{"channel": c, "subscribers": n} for c, n in cursor.execute(_CHANNELS, [t_ns]).fetchall()],
        "clients": [_client(r) for r in cursor.execute(_CLIENTS, [t_ns]).fetchall()],
        "info": json.loads(info),
    }


def snapshot(cursor: Reader, since_ns: int | None, until_ns: int | None) -> dict:
    """The /api/v1/broker answer: the latest sample in the window and the series across it."""
    since = 0 if since_ns is None else since_ns
    until = _MAX_NS if until_ns is None else until_ns
    series = [
        {"t_ns": t_ns, "messages_per_s": _rate(published, elapsed), "clients": clients, "omem_max": omem_max}
        for t_ns, clients, omem_max, published, elapsed in cursor.execute(_SERIES, [since, until]).fetchall()
    ]
    return {"latest": _latest(cursor, since, until), "series": series}
