"""Real processes for tests: RabbitMQ, moto, a Redis cluster node, a reply-dropping proxy.

The redis-server and collectors processes that benchmarks start too live in devtools/processes.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from devtools.processes import ROOT, Collectors, RedisServer, free_port, wait_until

__all__ = ["ROOT", "Collectors", "RedisServer", "free_port", "wait_until"]


class RabbitMQ:
    """Debian's ``rabbitmq-server`` as a private node: its own name, ports, epmd, data and logs in a temp dir.

    epmd is started here in the foreground (not as the daemon RabbitMQ would leave behind), so ``stop``
    ends everything it started.
    """

    def __init__(self):
        binary = shutil.which("rabbitmq-server", path="/usr/lib/rabbitmq/bin:" + os.environ.get("PATH", ""))
        epmd = shutil.which("epmd")
        if binary is None or epmd is None:
            raise RuntimeError(
                "rabbitmq-server is not installed: ./run test installs it (apt-get install rabbitmq-server)"
            )
        self.home = tempfile.mkdtemp(prefix="eventscope-rabbitmq-")
        self.port, dist_port, epmd_port = free_port(), free_port(), free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        plugins = Path(self.home, "enabled_plugins")
        plugins.write_text("[].\n")
        self.env = {
            **os.environ,
            "HOME": self.home,
            "RABBITMQ_NODENAME": f"eventscope{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(Path(self.home, "mnesia")),
            "RABBITMQ_LOG_BASE": str(Path(self.home, "log")),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_CONFIG_FILE": str(Path(self.home, "rabbitmq")),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(Path(self.home, "advanced.config")),
            "RABBITMQ_CONF_ENV_FILE": str(Path(self.home, "rabbitmq-env.conf")),
            "RABBITMQ_PID_FILE": str(Path(self.home, "rabbitmq.pid")),
        }
        self.log_path = Path(self.home, "server.log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.epmd = subprocess.Popen(
            [epmd, "-port", str(epmd_port), "-address", "127.0.0.1"], env=self.env, stdout=self._log, stderr=self._log
        )
        self.process = subprocess.Popen(
            [binary], env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until(self._accepting, timeout=90, interval=0.3, what=f"rabbitmq-server on {self.port}")
        except BaseException:
            self.stop()
            raise

    def _accepting(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"rabbitmq-server exited: {self.log_path.read_text(errors='replace')[-2000:]}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def stop(self) -> None:
        for process in (self.process, self.epmd):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        self._log.close()
        shutil.rmtree(self.home, ignore_errors=True)


class MotoServer:
    """moto in server mode (SQS and SNS, any AWS API) on a free port, from its own virtualenv."""

    def __init__(self, python: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(tempfile.mkdtemp(prefix="eventscope-moto-"), "moto.log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self._ready, timeout=60, interval=0.2, what=f"moto server on {self.port}")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"moto server exited: {Path(self.log_path).read_text(errors='replace')[-2000:]}")
        with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2) as response:
            return response.status == 200

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self._log.close()


@contextmanager
def running_collectors(redis_url: str | None = None, extra_env: dict | None = None) -> Iterator[Collectors]:
    """A collectors process stopped however the block ends; a clean end also asserts its log has no traceback."""
    process = Collectors(redis_url, extra_env=extra_env)
    try:
        yield process
    finally:
        process.stop()
    assert "Traceback" not in process.log(), process.log()


class ReplyDroppingProxy:
    """A TCP proxy in front of Redis that can lose one reply: once ``arm(marker)`` is called, the next
    command bytes holding ``marker`` reach Redis, then the client's connection is cut before the reply.
    redis-py retries on a new connection, so Redis runs that command twice: an at-least-once publish."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._marker: bytes | None = None
        self.fired = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, marker: bytes) -> None:
        self._marker = marker

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            cut = threading.Event()
            threading.Thread(target=self._to_redis, args=(client, upstream, cut), daemon=True).start()
            threading.Thread(target=self._to_client, args=(upstream, client, cut), daemon=True).start()

    def _to_redis(self, client: socket.socket, upstream: socket.socket, cut: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                marker = self._marker
                if marker is not None and marker in data:
                    self._marker = None
                    cut.set()
                    upstream.sendall(data)
                    time.sleep(0.2)  # Redis has run it; its reply is dropped
                    self.fired.set()
                    break
                upstream.sendall(data)
        except OSError:
            pass
        for sock in (client, upstream):
            sock.close()

    @staticmethod
    def _to_client(upstream: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        try:
            while (data := upstream.recv(65536)) and not cut.is_set():
                client.sendall(data)
        except OSError:
            pass

    def stop(self) -> None:
        self._listener.close()


class SingleNodeCluster:
    """``redis-server`` in cluster mode holding every slot: RedisCluster and sharded Pub/Sub against a real
    cluster protocol on one process (a many-node cluster, with slots moving, is another test's)."""

    ATTEMPTS = 3  # a free port can be taken by another process before redis-server binds it

    def __init__(self):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: ./run test installs it (apt-get install redis-server)")
        self.dir = tempfile.mkdtemp(prefix="eventscope-cluster-")
        for attempt in range(1, self.ATTEMPTS + 1):
            self.port = free_port()
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--cluster-enabled", "yes", "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            node = redis.Redis.from_url(f"redis://127.0.0.1:{self.port}/0")  # from_url: no retry backoff
            try:
                wait_until(node.ping, what=f"redis-server (cluster) on {self.port}")
                break
            except (TimeoutError, redis.ConnectionError):
                self.process.kill()
                self.process.wait(timeout=10)
                if attempt == self.ATTEMPTS:
                    raise
            finally:
                node.close()
        node = redis.Redis.from_url(f"redis://127.0.0.1:{self.port}/0")
        node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        wait_until(lambda: b"cluster_state:ok" in node.execute_command("CLUSTER", "INFO"), 60, what="cluster ok")
        node.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
