"""The broker stats poller against a real redis-server: a slow subscriber's output buffer is seen against its limit."""

from __future__ import annotations

import socket

import duckdb
import pytest

from collectors.bus.broker_stats import snapshot
from tests.processes import Collectors, RedisServer, wait_until

pytestmark = pytest.mark.integration
POLL = {"EVENTSCOPE_BROKER_POLL_S": "0.2", "EVENTSCOPE_GRPC_LISTEN": "off"}


def resp(*words: str) -> bytes:
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        parts.append(f"${len(word.encode())}\r\n{word}\r\n".encode())
    return b"".join(parts)


def slow_subscriber(port: int, name: str, channel: str) -> socket.socket:
    """A subscriber that never reads, with a tiny receive buffer, so Redis keeps its messages in omem."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(resp("CLIENT", "SETNAME", name) + resp("SUBSCRIBE", channel))
    return sock


def test_a_slow_subscriber_s_buffer_is_seen_against_the_pubsub_limit():
    redis_server = RedisServer()
    client = redis_server.client()
    client.config_set("client-output-buffer-limit", "pubsub 64mb 16mb 60")
    subscriber = slow_subscriber(redis_server.port, "slow-shipping", "shop.shipping")
    collectors = Collectors(redis_server.url, extra_env=POLL)
    try:
        wait_until(lambda: client.pubsub_numsub("shop.shipping")[0][1] == 1, what="the slow subscriber")
        for _ in range(6):
            client.publish("shop.shipping", b"x" * 1_000_000)
        slow = [c for c in client.client_list() if c["name"] == "slow-shipping"]
        assert int(slow[0]["omem"]) > 0
        seen = collectors.get("health")["broker"]["samples"]
        wait_until(lambda: collectors.get("health")["broker"]["samples"] >= seen + 2, what="two more polls")
        assert collectors.get("health")["broker"]["connected"] is True
    finally:
        collectors.stop()
        subscriber.close()
        redis_server.stop()
    assert "Traceback" not in collectors.log()
    connection = duckdb.connect(collectors.store, read_only=True)
    try:
        answer = snapshot(connection, None, None)
    finally:
        connection.close()
    latest = answer["latest"]
    by_name = {c["name"]: c for c in latest["clients"]}
    slow = by_name["slow-shipping"]
    assert (slow["sub"], slow["psub"], slow["limit_bytes"]) == (1, 0, 64 * 1024 * 1024)
    assert slow["omem"] > 0 and slow["fraction"] == slow["omem"] / slow["limit_bytes"]
    assert {"channel": "shop.shipping", "subscribers": 1} in latest["channels"]
    assert latest["numpat"] == 1  # the bus tap's PSUBSCRIBE
    assert "used_memory" in latest["info"] and "connected_clients" in latest["info"]
    assert max(s["omem_max"] for s in answer["series"]) >= slow["omem"]
    assert any(s["messages_per_s"] > 0 for s in answer["series"])
