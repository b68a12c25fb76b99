"""The bus tap on a Redis Cluster beside the tap on one Redis, in one run.

Baseline: a private ``redis-server``, N CloudEvents PUBLISHed on 3 channels, tapped by a collectors process
with one PSUBSCRIBE. Candidates, on a private cluster (3 primaries, 1 replica each): the same N events
SPUBLISHed on 3 sharded channels, one per shard (the tap holds one SSUBSCRIBE connection per owner and reads
them in turn), and PUBLISHed on 3 classic channels at a node other than the tap's (each message crosses the
cluster bus first). Each figure is the tap's rate from the first publish until it has recorded all N, per
wall second and per collectors CPU-second (utime + stime from /proc over the same interval), printed beside
the baseline as a ratio. Rounds alternate the three and the best of each is kept.
Run: ``python -m bench.cluster_tap [--messages N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import redis

from devtools.processes import Collectors, RedisCluster, RedisServer, wait_until

MESSAGES = 20_000
ROUNDS = 2
BATCH = 500
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """A process's user + system CPU seconds so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def payload(channel: str, sequence: int) -> bytes:
    event = {"specversion": "1.0", "id": f"{channel}-{sequence}", "source": "/bench/1", "type": "bench.tap"}
    return json.dumps({**event, "sequence": str(sequence), "data": {"order_id": f"o-{sequence}"}}).encode()


def publish(targets: list[tuple[redis.Redis, str, str]], messages: int) -> int:
    """About ``messages`` events spread evenly over ``targets`` (client, command, channel), sent in pipelines;
    how many were sent."""
    per = messages // len(targets)
    for client, command, channel in targets:
        for start in range(1, per + 1, BATCH):
            pipe = client.pipeline(transaction=False)
            for sequence in range(start, min(start + BATCH, per + 1)):
                pipe.execute_command(command, channel, payload(channel, sequence))
            pipe.execute()
    return per * len(targets)


def measure(url: str, env: dict, targets, messages: int) -> tuple[float, float]:
    """(messages per wall second, messages per collectors CPU-second) for one tapped burst."""
    collectors = Collectors(url, extra_env={"EVENTSCOPE_BROKER_POLL_S": "0", **env})
    try:
        wait_until(lambda: collectors.get("health")["status"] == "ok", 30, what="the tap placed")
        cpu0, t0 = cpu_s(collectors.process.pid), time.perf_counter()
        sent = publish(targets, messages)
        wait_until(lambda: collectors.get("health")["tap"]["recorded"] >= sent, 300, 0.05, what="all recorded")
        wall, cpu = time.perf_counter() - t0, cpu_s(collectors.process.pid) - cpu0
    finally:
        collectors.stop()
    return sent / wall, sent / max(cpu, 1e-9)


def cases(single: RedisServer, cluster: RedisCluster) -> dict:
    sharded = {}
    for index in range(1000):
        sharded.setdefault(cluster.owner(f"bench.s{index}"), f"bench.s{index}")
        if len(sharded) == 3:
            break
    other = next(port for port in cluster.primaries() if port != cluster.port)
    on = {"EVENTSCOPE_REDIS_CLUSTER": "1"}
    return {
        "one redis, PUBLISH": (single.url, {}, [(single.client(), "PUBLISH", f"bench.c{i}") for i in range(3)]),
        "cluster, SPUBLISH x3 shards": (
            cluster.url,
            {**on, "EVENTSCOPE_TAP_SHARD_CHANNELS": ",".join(sharded.values())},
            [(cluster.node(port), "SPUBLISH", channel) for port, channel in sharded.items()],
        ),
        "cluster, PUBLISH": (cluster.url, on, [(cluster.node(other), "PUBLISH", f"bench.c{i}") for i in range(3)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    single, cluster = RedisServer(), RedisCluster()
    best: dict[str, tuple[float, float]] = {}
    try:
        runs = cases(single, cluster)
        for _ in range(args.rounds):
            for name, (url, env, targets) in runs.items():
                wall, per_cpu = measure(url, env, targets, args.messages)
                old = best.get(name, (0.0, 0.0))
                best[name] = (max(old[0], wall), max(old[1], per_cpu))
    finally:
        single.stop()
        cluster.stop()
    base_wall, base_cpu = best["one redis, PUBLISH"]
    print(f"tap, {args.messages} messages, best of {args.rounds} (load average {os.getloadavg()[0]:.1f})")
    for name, (wall, per_cpu) in best.items():
        print(
            f"  {name:<28} {wall:>9,.0f} msg/s ({wall / base_wall:.2f} x baseline)"
            f"  {per_cpu:>9,.0f} msg per collectors CPU-s ({per_cpu / base_cpu:.2f} x baseline)"
        )


if __name__ == "__main__":
    main()
