"""Faults: named, documented, switchable, in one place; every injection is recorded as ground truth.

Each fault is switched on from the command line (``--fault NAME[:key=value,...]``, repeatable) or
from its own environment variable (``SAMPLE_FAULT_<NAME>``, value ``on`` or ``key=value,...``). Its
parameters say how often (``rate``: the chance per opportunity) and when (a schedule: ``start_s``,
``stop_s``, and for repeating windows ``every_s`` with ``for_s``; seconds since the shop started).
Producer faults pick events by ``channel`` (``*`` = every channel); consumer faults pick a consumer
``group``. Random choices come from a generator seeded by the run's seed and the fault's name.

The ``FaultInjector`` is the one object the bus asks "inject now?"; it writes the ground truth
(sample_system.truth) as it injects, never from what a detector sees.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping

import redis
from opentelemetry import context as otel_context

from sample_system import truth

log = logging.getLogger(__name__)

ENV_PREFIX = "SAMPLE_FAULT_"
SCHEDULE_PARAMS = ("rate", "start_s", "stop_s", "every_s", "for_s")
TEXT_PARAMS = ("channel", "group")
ALL_CHANNELS = "*"


@dataclasses.dataclass(frozen=True)
class FaultSpec:
    """One named fault: what it does and its default parameters."""

    name: str
    description: str
    defaults: Mapping[str, float | str]


CATALOGUE: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec(
            "duplicate_publish",
            "The producer publishes the same event (same id, same sequence) a second time, as a producer "
            "that retries after a lost acknowledgement does. Idempotent consumers skip the copy.",
            {"rate": 0.1, "channel": "shop.orders"},
        ),
        FaultSpec(
            "reorder",
            "The producer holds an event back and publishes it after the next `hold` events of its stream.",
            {"rate": 0.1, "channel": "shop.orders", "hold": 2},
        ),
        FaultSpec(
            "drop_before_broker",
            "The producer spends the sequence number but the event never reaches Redis: a gap at every vantage. "
            "It is discarded once the next event of its stream is sent (so the gap shows); one still waiting at "
            "shutdown is sent after all.",
            {"rate": 0.05, "channel": "shop.orders"},
        ),
        FaultSpec(
            "consumer_crash",
            "A consumer group's subscriber goes down and comes back (for `for_s` seconds every `every_s`). "
            "Pub/Sub is at-most-once: what is published while it is down is lost to it, and only to it.",
            {"group": "shipping", "start_s": 3, "every_s": 8, "for_s": 2},
        ),
        FaultSpec(
            "slow_consumer",
            "A consumer group's handler takes `delay_ms` longer per event during the window: its backlog "
            "grows (in the socket buffers first, then in Redis's output buffer for it, `omem`) and its "
            "delivery latency climbs. With `buffer_limit_kb` the server's `client-output-buffer-limit pubsub` "
            "is lowered to that many KiB until the shop stops; once the backlog outgrows the socket buffers "
            "(megabytes), Redis disconnects the slow subscriber and what its buffer held is lost.",
            {"group": "order-view", "start_s": 2, "for_s": 5, "delay_ms": 120, "buffer_limit_kb": 0},
        ),
        FaultSpec(
            "poison_message",
            "The producer publishes an event whose data breaks its schema (a producer bug that skipped "
            "validation). Every consumer dead-letters it with the validation error.",
            {"rate": 0.05, "channel": "shop.orders"},
        ),
        FaultSpec(
            "transient_error",
            "A consumer group's handler fails now and then (a flaky dependency). The delivery is retried "
            "with exponential backoff and jitter; after the last attempt it goes to the dead-letter queue.",
            {"rate": 0.4, "group": "payments"},
        ),
        FaultSpec(
            "clock_skew",
            "The producer's clock runs `skew_ms` ahead: the event's `time` and its producer span start "
            "late, so delivery times come out negative. Detectors must report them, not correct them.",
            {"rate": 1.0, "channel": "shop.orders", "skew_ms": 800, "start_s": 3},
        ),
        FaultSpec(
            "double_subscription",
            "A consumer group subscribes to its channels with SUBSCRIBE and also PSUBSCRIBE: Redis delivers "
            "every message to it twice. The idempotency guard skips the second copy.",
            {"group": "notifications"},
        ),
    )
}


class FaultError(ValueError):
    """A fault setting is unusable; the message names the flag or environment variable."""


def env_var(name: str) -> str:
    """The environment variable that switches fault ``name`` on."""
    return ENV_PREFIX + name.upper()


@dataclasses.dataclass(frozen=True)
class FaultSetting:
    """A switched-on fault with its parameters (defaults filled in)."""

    name: str
    params: Mapping[str, float | str]

    def number(self, key: str, default: float | None = None) -> float | None:
        value = self.params.get(key, default)
        return None if value is None else float(value)

    def text(self, key: str) -> str | None:
        value = self.params.get(key)
        return None if value is None else str(value)

    def window(self, elapsed_s: float) -> int | None:
        """The index of the activation window ``elapsed_s`` falls in, or None outside every window."""
        start = self.number("start_s", 0.0)
        stop = self.number("stop_s")
        every, length = self.number("every_s"), self.number("for_s")
        if elapsed_s < start or (stop is not None and elapsed_s >= stop):
            return None
        if every:
            index, offset = divmod(elapsed_s - start, every)
            return int(index) if length is None or offset < length else None
        return 0 if length is None or elapsed_s - start < length else None

    def matches_channel(self, channel: str) -> bool:
        wanted = self.text("channel") or ALL_CHANNELS
        return wanted in (ALL_CHANNELS, channel)


def parse_setting(text: str, origin: str) -> FaultSetting:
    """``NAME[:key=value,...]`` to a setting; ``origin`` (a flag or env var) names the source in errors."""
    name, _, rest = text.strip().partition(":")
    name = name.strip().replace("-", "_")
    if name not in CATALOGUE:
        raise FaultError(f"{origin}: unknown fault {name!r}; known: {', '.join(CATALOGUE)}")
    params: dict[str, float | str] = dict(CATALOGUE[name].defaults)
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise FaultError(f"{origin}: expected key=value, got {item!r}")
        params[key.strip()] = _param(key.strip(), value.strip(), name, origin)
    rate = float(params.get("rate", 1.0))
    if not 0.0 <= rate <= 1.0:
        raise FaultError(f"{origin}: rate must be between 0 and 1, got {rate}")
    return FaultSetting(name, params)


def _param(key: str, value: str, name: str, origin: str) -> float | str:
    allowed = set(SCHEDULE_PARAMS) | set(TEXT_PARAMS) | set(CATALOGUE[name].defaults)
    if key not in allowed:
        raise FaultError(f"{origin}: {name} has no parameter {key!r}; it takes {', '.join(sorted(allowed))}")
    if key in TEXT_PARAMS:
        return value
    try:
        number = float(value)
    except ValueError:
        raise FaultError(f"{origin}: {key} must be a number, got {value!r}") from None
    if number < 0:
        raise FaultError(f"{origin}: {key} must not be negative, got {value!r}")
    return number


def load_settings(environ: Mapping[str, str], flags: list[str] | None = None) -> dict[str, FaultSetting]:
    """Faults switched on by environment variables, then by ``--fault`` flags (flags win)."""
    settings: dict[str, FaultSetting] = {}
    for name in CATALOGUE:
        value = environ.get(env_var(name), "").strip()
        if value and value.lower() not in ("off", "0", "false", "no"):
            params = "" if value.lower() in ("on", "1", "true", "yes") else value
            settings[name] = parse_setting(f"{name}:{params}", env_var(name))
    for flag in flags or []:
        setting = parse_setting(flag, f"--fault {flag}")
        settings[setting.name] = setting
    return settings


class TransientError(RuntimeError):
    """A handler failure worth retrying (the injected flaky dependency raises it)."""


Published = tuple[dict, object]  # (event, the OpenTelemetry context to publish it in)


class FaultInjector:
    """Decides, at each opportunity, whether a fault fires, and writes the ground truth when it does."""

    def __init__(self, settings: Mapping[str, FaultSetting], seed: int, ground_truth: truth.GroundTruth):
        self.settings = dict(settings)
        self.truth = ground_truth
        self._started = time.monotonic()
        self._rngs = {name: random.Random(f"{seed}:{name}") for name in CATALOGUE}
        self._lock = threading.Lock()
        self._subscriptions: dict[str, tuple[str, ...]] = {}
        self._down: set[str] = set()
        self._lost: dict[str, set[str]] = defaultdict(set)
        self._held: dict[tuple, list[list]] = defaultdict(list)
        self._pending_drops: dict[tuple, tuple[dict, object]] = {}
        self._windows_seen: set[tuple[str, str, int]] = set()
        self._client = None
        self._saved_buffer_limit: str | None = None

    def use_redis(self, client) -> None:
        """The connection for faults that change the server itself (the pubsub output buffer limit)."""
        self._client = client

    def restore(self) -> None:
        """Put back any server setting a fault changed."""
        if self._client is not None and self._saved_buffer_limit is not None:
            self._client.config_set("client-output-buffer-limit", self._saved_buffer_limit)
            self._saved_buffer_limit = None

    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def _firing(self, name: str, channel: str | None = None, group: str | None = None) -> FaultSetting | None:
        """The setting when fault ``name`` applies here and now (before its rate is rolled)."""
        setting = self.settings.get(name)
        if setting is None or setting.window(self.elapsed_s()) is None:
            return None
        if channel is not None and not setting.matches_channel(channel):
            return None
        if group is not None and setting.text("group") not in (None, group):
            return None
        return setting

    def _roll(self, name: str, setting: FaultSetting) -> bool:
        with self._lock:
            return self._rng_below(name, setting)

    def fires(self, name: str, channel: str | None = None, group: str | None = None) -> FaultSetting | None:
        """The setting when fault ``name`` fires at this opportunity, else None."""
        setting = self._firing(name, channel, group)
        return setting if setting is not None and self._roll(name, setting) else None

    def _write(self, fault: str, channel: str, event: dict | None, group: str | None = None, **detail) -> None:
        self.truth.write(truth.record(fault, channel, event, group, detail))

    # Producer side -------------------------------------------------------------------------------

    def drop(self, channel: str, event: dict) -> bool:
        """True when the event must vanish before the broker.

        The event is held until the next event of its stream comes, and only then discarded and recorded:
        a drop at the very end of a stream would leave no gap for anyone to see (``release_held`` publishes
        a drop still pending at shutdown after all, unrecorded).
        """
        stream = (channel, event.get("source"), event.get("partitionkey"))
        with self._lock:
            overtaken = self._pending_drops.pop(stream, None)
        if overtaken is not None:
            self._write("drop_before_broker", channel, overtaken[0])
        if self.fires("drop_before_broker", channel):
            with self._lock:
                self._pending_drops[stream] = (event, otel_context.get_current())
            return True
        return False

    def skew_ms(self, channel: str, event: dict) -> float:
        """How far ahead this producer's clock runs for this event (0 = no skew; recorded when not 0)."""
        setting = self.fires("clock_skew", channel)
        if setting is None:
            return 0.0
        skew = setting.number("skew_ms", 0.0) or 0.0
        self._write("clock_skew", channel, event, skew_ms=skew)
        return skew

    def poison(self, channel: str, event: dict) -> bool:
        """True when this event is to be published broken, skipping validation (recorded)."""
        if self.fires("poison_message", channel):
            self._write("poison_message", channel, event, reason="data replaced by a value its schema rejects")
            return True
        return False

    def duplicate(self, channel: str, event: dict) -> bool:
        """True when the event is to be published a second time (recorded)."""
        if self.fires("duplicate_publish", channel):
            self._write("duplicate_publish", channel, event)
            return True
        return False

    def reorder(self, channel: str, event: dict) -> list[Published]:
        """What to publish now for ``event``: nothing (held back), or it followed by released events."""
        stream = (channel, event.get("source"), event.get("partitionkey"))
        setting = self._firing("reorder", channel)
        with self._lock:
            held = self._held[stream]
            hold_now = setting is not None and not held and self._rng_below("reorder", setting)
            if hold_now:
                held.append([event, otel_context.get_current(), int(setting.number("hold", 2) or 1), 0])
                return []
            now = [(event, otel_context.get_current())]
            for entry in held:
                entry[2] -= 1
                entry[3] += 1
            released = [entry for entry in held if entry[2] <= 0]
            self._held[stream] = [entry for entry in held if entry[2] > 0]
        for late, ctx, _, passed in released:
            self._write("reorder", channel, late, held_behind=passed)
            now.append((late, ctx))
        return now

    def _rng_below(self, name: str, setting: FaultSetting) -> bool:
        rate = setting.number("rate", 1.0)
        return rate >= 1.0 or self._rngs[name].random() < rate

    def release_held(self) -> list[tuple[str, dict, object]]:
        """Every event still held back, to publish at shutdown (recorded when later events overtook it).

        A drop still pending (no later event of its stream came) is published too: it was never lost.
        """
        with self._lock:
            held, self._held = self._held, defaultdict(list)
            pending, self._pending_drops = self._pending_drops, {}
        released = [(channel, event, ctx) for (channel, _, _), (event, ctx) in pending.items()]
        for (channel, _, _), entries in held.items():
            for late, ctx, _, passed in entries:
                if passed:
                    self._write("reorder", channel, late, held_behind=passed)
                released.append((channel, late, ctx))
        return released

    def publishing(self, channel: str, event: dict, send: Callable[[], int]) -> int:
        """Run ``send`` (the PUBLISH); record the event as lost to every group that is down right now.

        The lock makes "is the group down" and "PUBLISH" one step, so the ground truth is exact.
        """
        if "consumer_crash" not in self.settings:
            return send()
        with self._lock:
            receivers = send()
            lost_to = [g for g in self._down if channel in self._subscriptions.get(g, ())]
            for group in lost_to:
                self._lost[group].add(event["id"])
        for group in lost_to:
            self._write("consumer_crash", channel, event, group)
        return receivers

    # Consumer side -------------------------------------------------------------------------------

    def register(self, group: str, channels: list[str]) -> None:
        self._subscriptions[group] = tuple(channels)

    def crash_due(self, group: str) -> bool:
        """True when ``group`` should be down now (its crash window is open)."""
        return self._firing("consumer_crash", group=group) is not None

    def mark_down(self, group: str) -> None:
        with self._lock:
            self._down.add(group)

    def mark_up(self, group: str) -> None:
        with self._lock:
            self._down.discard(group)

    def lost_to(self, group: str, event_id: str) -> bool:
        """True for an event published while ``group`` was down: it must never reach that group."""
        lost = self._lost.get(group)
        return bool(lost) and event_id in lost

    def slow_delay_s(self, group: str, channel: str) -> float:
        """Extra handling time for ``group`` now; the first call in each window records an activation."""
        setting = self._firing("slow_consumer", group=group)
        if setting is None:
            return 0.0
        window = setting.window(self.elapsed_s())
        key = ("slow_consumer", group, window)
        with self._lock:
            first = key not in self._windows_seen
            self._windows_seen.add(key)
        delay_ms = setting.number("delay_ms", 0.0) or 0.0
        if first:
            limit_kb = int(setting.number("buffer_limit_kb", 0.0) or 0)
            if limit_kb:
                self._lower_buffer_limit(limit_kb)
            self._write(
                "slow_consumer",
                channel,
                None,
                group,
                delay_ms=delay_ms,
                window=window,
                for_s=setting.number("for_s"),
                buffer_limit_kb=limit_kb,
            )
        return delay_ms / 1000.0

    def _lower_buffer_limit(self, limit_kb: int) -> None:
        if self._client is None:
            return
        try:
            if self._saved_buffer_limit is None:
                current = self._client.config_get("client-output-buffer-limit")
                self._saved_buffer_limit = current["client-output-buffer-limit"]
            self._client.config_set("client-output-buffer-limit", f"pubsub {limit_kb * 1024} {limit_kb * 1024} 0")
        except redis.ResponseError as exc:  # a managed Redis may refuse CONFIG: the slowness still happens
            log.warning("slow_consumer: cannot lower the pubsub output buffer limit: %s", exc)

    def double_subscribed(self, group: str) -> bool:
        return self._firing("double_subscription", group=group) is not None

    def double_delivery(self, group: str, channel: str, event: dict) -> None:
        """Record a second copy that Redis delivered because of SUBSCRIBE plus PSUBSCRIBE."""
        self._write("double_subscription", channel, event, group)

    def transient(self, group: str, channel: str, event: dict, attempt: int) -> None:
        """Raise TransientError when this handler attempt is to fail (recorded)."""
        if self.fires("transient_error", group=group):
            self._write("transient_error", channel, event, group, attempt=attempt)
            raise TransientError(f"injected transient error (attempt {attempt})")

    def dead_letter(self, group: str, channel: str, event: dict, reason: str, attempts: int) -> None:
        """Record that ``group`` dead-lettered ``event`` after its last attempt."""
        self._write("dead_letter", channel, event, group, reason=reason, attempts=attempts)


def describe() -> list[dict]:
    """The catalogue as plain data (for the CLI and the docs)."""
    return [
        {"name": s.name, "env": env_var(s.name), "description": s.description, "defaults": dict(s.defaults)}
        for s in CATALOGUE.values()
    ]
