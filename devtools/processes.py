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
        self.log_path = self.store + ".log"
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
