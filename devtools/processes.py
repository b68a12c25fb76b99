"""Real processes that tests and benchmarks both start: a private redis-server and a collectors process.

Each runs on a free loopback port and is stopped by its owner; tests/processes.py adds the test-only ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """``redis-server`` on a free loopback port, no persistence; ``stop`` kills it."""

    def __init__(self, port: int | None = None):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: ./run test installs it (apt-get install redis-server)")
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: redis.Redis.from_url(self.url).ping(), what=f"redis-server on {self.port}")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Collectors:
    """``python -m collectors serve`` with a private store; ``api`` is its base URL."""

    def __init__(self, redis_url: str | None, store: str | None = None, extra_env: dict | None = None):
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.store = store or os.path.join(tempfile.mkdtemp(prefix="eventscope-"), "store.duckdb")
        args = [
            sys.executable,
            "-m",
            "collectors",
            "serve",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--store",
            self.store,
        ]
        if redis_url:
            args += ["--redis-url", redis_url]
        # OTLP/gRPC defaults to the fixed port 4317; tests that want it pass a free port in extra_env
        inherited = {k: v for k, v in os.environ.items() if k != "EVENTSCOPE_TOKEN"}  # a test asks for a token
        env = {**inherited, "EVENTSCOPE_GRPC_LISTEN": "off", **(extra_env or {})}
        token = env.get("EVENTSCOPE_TOKEN")
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}  # what get() sends
        # beside a DuckDB file or a chdb directory; a server's store logs into a directory of its own
        local = self.store.removeprefix("duckdb:").removeprefix("chdb:").split("?", 1)[0]
        self.log_path = (local if "://" not in local else tempfile.mkdtemp(prefix="eventscope-") + "/store") + ".log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        # "ok" while the tap and the poller are still making their first connection; "degraded" only once
        # an attempt failed (docs/api.md), so this waits for a reachable Redis, never for a slow start
        wait_until(lambda: self.get("health")["status"] == "ok", what="collectors health")
        if redis_url:
            wait_until(lambda: self.get("health")["tap"]["connected"], what="bus tap connected")

    def get(self, path: str) -> dict:
        request = urllib.request.Request(f"{self.api}/api/v1/{path}", headers=self.auth)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self._log.close()


@contextlib.contextmanager
def running_dashboard(api: str, timeout: float = 120.0, extra_env: dict | None = None):
    """The Streamlit dashboard on a free port reading ``api``, as .streamlit/config.toml sets it up (this
    machine only, headless); yields its URL. The page controls stay off unless ``extra_env`` turns them on
    (with it, a test also names the Redis the scenarios it starts from a page run against)."""
    port = free_port()
    env = {**os.environ, "EVENTSCOPE_API": api}
    env.pop("EVENTSCOPE_CONTROLS", None)
    env.update(extra_env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib.request.urlopen(f"{url}/_stcore/health", timeout=5), timeout, what="the dashboard")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


class RedisCluster:
    """A real Redis Cluster: ``primaries`` primaries with ``replicas`` replica(s) each, every node a ``redis-server
    --cluster-enabled yes`` on free loopback ports (data and cluster bus) with its own temp dir, joined by
    ``redis-cli --cluster create``. ``url`` names one node, as a user's REDIS_URL would; ``stop`` ends them all.

    Failover is quick (``cluster-node-timeout`` NODE_TIMEOUT_MS) and a shard that is down leaves the others
    serving (``cluster-require-full-coverage no``), so a test can kill one primary and watch the rest go on.
    """

    NODE_TIMEOUT_MS = 1000
    ATTEMPTS = 3  # a free port can be taken by another process before redis-server binds it

    def __init__(self, primaries: int = 3, replicas: int = 1):
        self._binary = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if self._binary is None or cli is None:
            raise RuntimeError("redis-server is not installed: ./run test installs it (apt-get install redis-server)")
        self.dir = tempfile.mkdtemp(prefix="eventscope-cluster-")
        self.processes: dict[int, subprocess.Popen] = {}
        self._bus_ports: dict[int, int] = {}
        try:
            for _ in range(primaries * (1 + replicas)):
                self._start_new()
            addresses = [f"127.0.0.1:{port}" for port in self.processes]
            subprocess.run(
                [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(replicas), "--cluster-yes"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=60,
            )
            wait_until(lambda: self._settled(primaries), 60, 0.2, what="the cluster to agree on every slot")
        except BaseException:
            self.stop()
            raise
        self.port = next(iter(self.processes))
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def _start_new(self) -> None:
        for attempt in range(1, self.ATTEMPTS + 1):
            port, bus_port = free_port(), free_port()
            self._bus_ports[port] = bus_port
            try:
                self.start(port)
                return
            except (TimeoutError, redis.ConnectionError):
                self.processes.pop(port).kill()
                if attempt == self.ATTEMPTS:
                    raise

    def start(self, port: int) -> None:
        """Start (or restart, with its nodes.conf: it rejoins the cluster) the node on ``port``."""
        node_dir = os.path.join(self.dir, str(port))
        os.makedirs(node_dir, exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [self._binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--cluster-enabled", "yes", "--cluster-port", str(self._bus_ports[port]),
             "--cluster-node-timeout", str(self.NODE_TIMEOUT_MS), "--cluster-require-full-coverage", "no",
             "--cluster-replica-validity-factor", "0", "--dir", node_dir,
             "--logfile", os.path.join(node_dir, "redis.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: self.node(port).ping(), what=f"redis-server (cluster) on {port}")

    def node(self, port: int) -> redis.Redis:
        """A plain client of one node (no cluster routing)."""
        return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=2, socket_timeout=5)

    def _settled(self, primaries: int) -> bool:
        """Every live node says the cluster is ok, and ``primaries`` of them are primaries."""
        for port, process in self.processes.items():
            if process.poll() is None:
                with self.node(port) as node:
                    if b"cluster_state:ok" not in node.execute_command("CLUSTER", "INFO"):
                        return False
        return len(self.primaries()) == primaries

    def roles(self) -> dict[int, str]:
        """Each live node's role as it says itself: ``master`` or ``slave``."""
        roles = {}
        for port, process in self.processes.items():
            if process.poll() is None:
                with self.node(port) as node:
                    roles[port] = node.role()[0].decode()
        return roles

    def primaries(self) -> list[int]:
        return sorted(port for port, role in self.roles().items() if role == "master")

    def owner(self, channel: str) -> int:
        """The port of the primary that owns ``channel``'s hash slot, as the cluster says now."""
        with self.node(self.primaries()[0]) as node:
            return _slot_owner(node, channel)

    def move_slot(self, channel: str, to_port: int) -> None:
        """Hand ``channel``'s hash slot (holding no keys) to the primary on ``to_port``, as a resharding does:
        IMPORTING / MIGRATING, then every primary told the new owner."""
        from redis.crc import key_slot

        slot, source = key_slot(channel.encode()), self.owner(channel)
        ids = {}
        for port in self.primaries():
            with self.node(port) as node:
                ids[port] = node.execute_command("CLUSTER", "MYID").decode()
        with self.node(to_port) as target, self.node(source) as origin:
            target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
            origin.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to_port])
        for port in ids:
            with self.node(port) as node:
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[to_port])

    def kill(self, port: int) -> None:
        """SIGKILL one node: no goodbye, as a crashed machine."""
        process = self.processes[port]
        process.kill()
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _slot_owner(node: redis.Redis, channel: str) -> int:
    """The port serving ``channel``'s slot according to ``node`` (CLUSTER SLOTS)."""
    from redis.crc import key_slot

    slot = key_slot(channel.encode())
    for start, end, primary, *_ in node.execute_command("CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return int(primary[1])
    raise LookupError(f"no node serves slot {slot}")
