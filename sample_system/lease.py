"""The scenario lease: while a teaching scenario runs, it has the bus to itself.

The continuous shop (``python -m sample_system run``, started by ``./run demo``) and a scenario
(``python -m sample_system scenario run``) subscribe the same consumer groups to the same channels
on the same Redis. If both shops ran at once, every group would receive each scenario event twice
and the demo's load would mix into the scenario's streams. So:

- a scenario holds ``LEASE_KEY`` (value: its name) while it runs, refreshing its short expiry;
- every continuous runner announces itself (``RUNNERS_KEY`` and a heartbeat ``ALIVE_PREFIX`` +
  id); when it sees the lease it closes its whole shop, then acknowledges with ``PAUSED_PREFIX`` +
  id; when the lease is gone it clears the acknowledgement and starts a fresh shop (new producer
  instances, hence new streams) in one atomic step, so no shop starts while a lease is held;
- before its shop consumes, the scenario waits (bounded) until every live runner has acknowledged.

A runner sets its heartbeat before it first reads the lease, and a scenario takes the lease before
it looks for runners, so a runner that starts meanwhile either is seen or sees the lease.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

LEASE_KEY = "{sample}:scenario:lease"  # value: the running scenario's name; expires unless refreshed
RUNNERS_KEY = "{sample}:demo:runners"  # set of continuous runner ids (a dead one is pruned by the next scenario)
ALIVE_PREFIX = "{sample}:demo:alive:"  # + runner id: the runner's heartbeat
PAUSED_PREFIX = "{sample}:demo:paused:"  # + runner id: value = the scenario it closed its shop for
LEASE_TTL_S = 5.0  # a scenario killed outright frees the bus after this long
LEASE_REFRESH_S = 1.0
ALIVE_TTL_S = 3.0
PAUSED_TTL_S = 3.0
POLL_S = 0.5  # how often a runner looks at the lease (and refreshes its heartbeat)
WAIT_S = 10.0  # how long a scenario waits for another scenario's lease, then for the runners to pause
SAY_EVERY_S = 1.0

# Refresh or drop the lease only while it still holds our value.
_REFRESH = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# A paused runner: still held -> keep the acknowledgement (returns the holder); free -> clear it (returns nil).
_PAUSED_OR_FREE = """
local holder = redis.call('GET', KEYS[1])
if holder then
  redis.call('SET', KEYS[2], holder, 'PX', ARGV[1])
  return holder
end
redis.call('DEL', KEYS[2])
return false
"""


def runner_id() -> str:
    """A fresh id for one continuous runner process."""
    return f"{os.getpid()}-{os.urandom(3).hex()}"


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def pending_runners(client: redis.Redis) -> list[str]:
    """Live runners that have not yet acknowledged the lease; forgets runners whose heartbeat expired."""
    ids = sorted(_text(member) for member in client.smembers(RUNNERS_KEY))
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for rid in ids:
        pipe.exists(ALIVE_PREFIX + rid)
        pipe.exists(PAUSED_PREFIX + rid)
    flags = pipe.execute()
    alive = dict(zip(ids, flags[0::2], strict=True))
    dead = [rid for rid in ids if not alive[rid]]
    if dead:
        client.srem(RUNNERS_KEY, *dead)
    return [rid for rid, paused in zip(ids, flags[1::2], strict=True) if alive[rid] and not paused]


class ScenarioLease:
    """A scenario's hold on the bus: take it, wait for the runners to pause, keep it fresh, give it back."""

    def __init__(
        self,
        client: redis.Redis,
        name: str,
        say: Callable[[str], None],
        stop: threading.Event | None = None,
        wait_s: float = WAIT_S,
    ):
        self._client = client
        self.name = name
        self._say = say
        self._stop = stop or threading.Event()
        self._wait_s = wait_s
        self._done = threading.Event()
        self._refresher: threading.Thread | None = None
        self.held = False

    def acquire(self) -> bool:
        """Take the lease and wait for the runners to pause; False when another scenario kept it too long."""
        if not self._take():
            return False
        self.held = True
        self._refresher = threading.Thread(target=self._refresh, name="scenario-lease", daemon=True)
        self._refresher.start()
        self._await_runners()
        return True

    def _take(self) -> bool:
        deadline = time.monotonic() + self._wait_s
        said = 0.0
        while True:
            if self._client.set(LEASE_KEY, self.name, nx=True, px=int(LEASE_TTL_S * 1000)):
                return True
            if self._stop.is_set() or time.monotonic() > deadline:
                return False
            if time.monotonic() - said >= SAY_EVERY_S:
                holder = _text(self._client.get(LEASE_KEY))
                self._say(f"scenario {self.name}: waiting for scenario {holder} to give the bus back")
                said = time.monotonic()
            self._stop.wait(0.1)

    def _await_runners(self) -> None:
        started = time.monotonic()
        said = 0.0
        waited = False
        while pending := pending_runners(self._client):
            if self._stop.is_set():
                return
            elapsed = time.monotonic() - started
            if elapsed > self._wait_s:
                self._say(
                    f"scenario {self.name}: {len(pending)} demo runner(s) did not pause within {self._wait_s:g}s; "
                    "starting anyway (their events may mix in)"
                )
                return
            if time.monotonic() - said >= SAY_EVERY_S:
                self._say(f"scenario {self.name}: waiting for the demo shop to pause ({elapsed:.0f}s)")
                said, waited = time.monotonic(), True
            self._stop.wait(0.1)
        if waited:
            self._say(f"scenario {self.name}: the demo shop has paused; the bus is ours")

    def _refresh(self) -> None:
        while not self._done.wait(LEASE_REFRESH_S):
            try:
                kept = self._client.eval(_REFRESH, 1, LEASE_KEY, self.name, int(LEASE_TTL_S * 1000))
                if not kept:  # expired while we stalled: take it back unless another scenario has
                    self._client.set(LEASE_KEY, self.name, nx=True, px=int(LEASE_TTL_S * 1000))
            except redis.RedisError as exc:
                log.warning("could not refresh the scenario lease: %s", exc)

    def release(self) -> None:
        """Give the bus back (only if the lease is still ours)."""
        self._done.set()
        if self._refresher is not None:
            self._refresher.join(timeout=LEASE_REFRESH_S * 2)
        if self.held:
            try:
                self._client.eval(_RELEASE, 1, LEASE_KEY, self.name)
            except redis.RedisError as exc:
                log.warning("could not release the scenario lease (it expires by itself): %s", exc)
            self.held = False


class RunnerPresence:
    """A continuous runner's side: a heartbeat, the lease it sees, and its pause acknowledgement."""

    def __init__(self, client: redis.Redis, rid: str | None = None):
        self._client = client
        self.id = rid or runner_id()
        self._alive_key = ALIVE_PREFIX + self.id
        self._paused_key = PAUSED_PREFIX + self.id
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._lock = threading.Lock()  # a heartbeat in flight must not overwrite a newer answer
        self.holder: str | None = None  # the scenario holding the lease, as last seen

    def start(self) -> RunnerPresence:
        """Announce the runner and read the lease once, then keep doing so every ``POLL_S``."""
        self.beat()
        self._thread = threading.Thread(target=self._beating, name="runner-presence", daemon=True)
        self._thread.start()
        return self

    def _beating(self) -> None:
        while not self._done.wait(POLL_S):
            self.beat()

    def beat(self) -> str | None:
        """Refresh the heartbeat, then read the lease; returns its holder (None too while Redis is away)."""
        pipe = self._client.pipeline(transaction=True)
        pipe.sadd(RUNNERS_KEY, self.id)
        pipe.set(self._alive_key, 1, px=int(ALIVE_TTL_S * 1000))
        pipe.get(LEASE_KEY)
        with self._lock:
            try:
                self.holder = _text(pipe.execute()[-1])
            except redis.RedisError as exc:
                if not self._failing:
                    log.warning("runner heartbeat failed (Redis away?): %s", exc)
                self._failing = True
                return self.holder
            self._failing = False
            return self.holder

    def paused_for(self) -> str | None:
        """Acknowledge the lease and return its holder; once it is gone, clear the acknowledgement and return None.

        Call it only with no shop running: the acknowledgement tells a scenario that this runner is out of its way.
        """
        with self._lock:
            try:
                keys = (LEASE_KEY, self._paused_key)
                self.holder = _text(self._client.eval(_PAUSED_OR_FREE, 2, *keys, int(PAUSED_TTL_S * 1000)))
            except redis.RedisError as exc:
                log.warning("runner cannot read the scenario lease (Redis away?): %s", exc)
            return self.holder

    def leave(self) -> None:
        """Stop the heartbeat and remove every trace of this runner."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=POLL_S * 4)
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(self._alive_key, self._paused_key)
            pipe.srem(RUNNERS_KEY, self.id)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not remove the runner's keys (they expire by themselves): %s", exc)
