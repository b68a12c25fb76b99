"""Faults: named, documented, switchable, in one place; every injection is recorded as ground truth.

Each fault is switched on from the command line (``--fault NAME[:key=value,...]``, repeatable) or
from its own environment variable (``SAMPLE_FAULT_<NAME>``, value ``on`` or ``key=value,...``). Its
parameters say how often (``rate``: the chance per opportunity) and when (a schedule: ``start_s``,
``stop_s``, and for repeating windows ``every_s`` with ``for_s``; seconds since the shop started).
Producer faults pick events by ``channel`` (``*`` = every channel); consumer faults pick a consumer
``group``. Random choices come from a generator seeded by the run's seed and the fault's name.

Each fault acts as a step around eventscope-redis's publish and delivery (``STEPS``: its step and its
stage, under the names of ``truth.Fault``). The ``FaultInjector`` hands the bus the steps of each
stage and writes the ground truth (sample_system.truth) as it injects, never from what a detector sees.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import redis

from eventscope_redis import Incoming, Outgoing
from sample_system import handling, truth
from sample_system.truth import Fault

log = logging.getLogger(__name__)

ENV_PREFIX = "SAMPLE_FAULT_"
SCHEDULE_PARAMS = ("rate", "start_s", "stop_s", "every_s", "for_s")
TEXT_PARAMS = ("channel", "group")
ALL_CHANNELS = "*"
Proceed = Callable[[Any], object]  # the rest of a chain of steps


@dataclasses.dataclass(frozen=True)
class FaultSpec:
    """One named fault: what it does and its default parameters."""

    name: Fault
    description: str
    defaults: Mapping[str, float | str]


CATALOGUE: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec(
            Fault.DUPLICATE_PUBLISH,
            "The producer publishes the same event (same id, same sequence) a second time, as a producer "
            "that retries after a lost acknowledgement does. Idempotent consumers skip the copy.",
            {"rate": 0.1, "channel": "shop.orders"},
        ),
        FaultSpec(
            Fault.REORDER,
            "The producer holds an event back and publishes it after the next `hold` events of its stream.",
            {"rate": 0.1, "channel": "shop.orders", "hold": 2},
        ),
        FaultSpec(
            Fault.DROP_BEFORE_BROKER,
            "The producer spends the sequence number but the event never reaches Redis: a gap at every vantage. "
            "It is discarded once the next event of its stream is sent (so the gap shows); one still waiting at "
            "shutdown is sent after all.",
            {"rate": 0.05, "channel": "shop.orders"},
        ),
        FaultSpec(
            Fault.CONSUMER_CRASH,
            "A consumer group's subscriber goes down and comes back (for `for_s` seconds every `every_s`). "
            "Pub/Sub is at-most-once: what is published while it is down is lost to it, and only to it.",
            {"group": "shipping", "start_s": 3, "every_s": 8, "for_s": 2},
        ),
        FaultSpec(
            Fault.SLOW_CONSUMER,
            "A consumer group's handler takes `delay_ms` longer per event during the window: its backlog "
            "grows (in the socket buffers first, then in Redis's output buffer for it, `omem`) and its "
            "delivery latency climbs. With `buffer_limit_kb` the server's `client-output-buffer-limit pubsub` "
            "is lowered to that many KiB until the shop stops; once the backlog outgrows the socket buffers "
            "(megabytes), Redis disconnects the slow subscriber and what its buffer held is lost.",
            {"group": "order-view", "start_s": 2, "for_s": 5, "delay_ms": 120, "buffer_limit_kb": 0},
        ),
        FaultSpec(
            Fault.POISON_MESSAGE,
            "The producer publishes an event whose data breaks its schema (a producer bug that skipped "
            "validation). Every consumer dead-letters it with the validation error.",
            {"rate": 0.05, "channel": "shop.orders"},
        ),
        FaultSpec(
            Fault.TRANSIENT_ERROR,
            "A consumer group's handler fails now and then (a flaky dependency). The delivery is retried "
            "with exponential backoff and jitter; after the last attempt it goes to the dead-letter queue.",
            {"rate": 0.4, "group": "payments"},
        ),
        FaultSpec(
            Fault.CLOCK_SKEW,
            "The producer's clock runs `skew_ms` ahead: the event's `time` and its producer span start "
            "late, so delivery times come out negative. Detectors must report them, not correct them.",
            {"rate": 1.0, "channel": "shop.orders", "skew_ms": 800, "start_s": 3},
        ),
        FaultSpec(
            Fault.DOUBLE_SUBSCRIPTION,
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


class Stage(enum.Enum):
    """Where a fault's step runs, around eventscope-redis's publish and delivery and the shop's practices."""

    PUBLISH = "publish"  # a producer step: after the sequence number is taken, before the span and PUBLISH
    ARRIVAL = "arrival"  # an arrival step: before the consumer span (not proceeding means never delivered)
    SETTLED = "settled"  # around validation and handling: sees how the delivery ended
    HANDLING = "handling"  # before the handler's attempts
    ATTEMPT = "attempt"  # inside each handler attempt


def poisoned(data: object) -> dict:
    """Data its schema rejects whatever the type: every field present but null."""
    fields = data if isinstance(data, dict) else {"value": data}
    return {key: None for key in fields}


class FaultInjector:
    """Decides, at each opportunity, whether a fault fires, and writes the ground truth when it does.

    ``steps(stage)`` gives the steps of the switched-on faults for one stage, in the order they run; the
    bus places them and never asks which fault is on.
    """

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
        self._pending_drops: dict[tuple, tuple[Outgoing, Proceed]] = {}
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

    def steps(self, stage: Stage) -> list[Callable]:
        """The steps of ``stage`` for the faults switched on (dead letters are always recorded), in order."""
        return [
            functools.partial(step, self)
            for fault, at, step in STEPS
            if at is stage and (fault in self.settings or fault is Fault.DEAD_LETTER)
        ]

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

    def _write(self, fault: Fault, channel: str, event: dict | None, group: str | None = None, **detail) -> None:
        self.truth.write(truth.record(fault, channel, event, group, detail))

    def _rng_below(self, name: str, setting: FaultSetting) -> bool:
        rate = setting.number("rate", 1.0)
        return rate >= 1.0 or self._rngs[name].random() < rate

    # Producer steps ------------------------------------------------------------------------------

    def drop(self, outgoing: Outgoing, proceed: Proceed) -> object:
        """The event vanishes before the broker, its sequence number spent.

        It is held until the next event of its stream comes, and only then discarded and recorded: a drop
        at the very end of a stream would leave no gap for anyone to see (``release_held`` sends a drop
        still pending at shutdown after all, unrecorded).
        """
        stream = outgoing.stream
        with self._lock:
            overtaken = self._pending_drops.pop(stream, None)
        if overtaken is not None:
            self._write(Fault.DROP_BEFORE_BROKER, outgoing.channel, overtaken[0].attributes)
        if self.fires(Fault.DROP_BEFORE_BROKER, outgoing.channel):
            with self._lock:
                self._pending_drops[stream] = (outgoing, proceed)
            return 0
        return proceed(outgoing)

    def skew(self, outgoing: Outgoing, proceed: Proceed) -> object:
        """This producer's clock runs ``skew_ms`` ahead for the event: its time and its span (recorded)."""
        setting = self.fires(Fault.CLOCK_SKEW, outgoing.channel)
        if setting is not None:
            skew_ms = setting.number("skew_ms", 0.0) or 0.0
            self._write(Fault.CLOCK_SKEW, outgoing.channel, outgoing.attributes, skew_ms=skew_ms)
            outgoing.clock_skew_ns = int(skew_ms * 1_000_000)
        return proceed(outgoing)

    def poison(self, outgoing: Outgoing, proceed: Proceed) -> object:
        """The event goes out with data its schema rejects, as if the producer skipped validation (recorded)."""
        if self.fires(Fault.POISON_MESSAGE, outgoing.channel):
            reason = "data replaced by a value its schema rejects"
            self._write(Fault.POISON_MESSAGE, outgoing.channel, outgoing.attributes, reason=reason)
            outgoing.payload = json.dumps(poisoned(json.loads(outgoing.payload))).encode()
        return proceed(outgoing)

    def reorder(self, outgoing: Outgoing, proceed: Proceed) -> object:
        """Hold the event back, or send it followed by the held events it released (each recorded)."""
        stream = outgoing.stream
        setting = self._firing(Fault.REORDER, outgoing.channel)
        with self._lock:
            held = self._held[stream]
            if setting is not None and not held and self._rng_below(Fault.REORDER, setting):
                held.append([outgoing, proceed, int(setting.number("hold", 2) or 1), 0])
                return 0
            for entry in held:
                entry[2] -= 1
                entry[3] += 1
            released = [entry for entry in held if entry[2] <= 0]
            self._held[stream] = [entry for entry in held if entry[2] > 0]
        receivers = proceed(outgoing) or 0
        for late, send_late, _, passed in released:
            self._write(Fault.REORDER, outgoing.channel, late.attributes, held_behind=passed)
            receivers += send_late(late) or 0
        return receivers

    def duplicate(self, outgoing: Outgoing, proceed: Proceed) -> object:
        """Send the event a second time, same id and sequence, as a producer retrying does (recorded)."""
        receivers = proceed(outgoing)
        if self.fires(Fault.DUPLICATE_PUBLISH, outgoing.channel):
            self._write(Fault.DUPLICATE_PUBLISH, outgoing.channel, outgoing.attributes)
            proceed(outgoing)
        return receivers

    def publishing(self, outgoing: Outgoing, proceed: Proceed) -> object:
        """PUBLISH, and record the event as lost to every group that is down right now.

        The lock makes "is the group down" and "PUBLISH" one step, so the ground truth is exact.
        """
        channel = outgoing.channel
        with self._lock:
            receivers = proceed(outgoing)
            lost_to = [g for g in self._down if channel in self._subscriptions.get(g, ())]
            for group in lost_to:
                self._lost[group].add(outgoing.attributes["id"])
        for group in lost_to:
            self._write(Fault.CONSUMER_CRASH, channel, outgoing.attributes, group)
        return receivers

    def release_held(self) -> int:
        """Send every event still held back (at shutdown, so none is silently lost); returns how many.

        Held events that later ones overtook are recorded as reordered; a drop still pending (no later
        event of its stream came) is sent too: it was never lost.
        """
        with self._lock:
            held, self._held = self._held, defaultdict(list)
            pending, self._pending_drops = self._pending_drops, {}
        released = list(pending.values())
        for entries in held.values():
            for late, send_late, _, passed in entries:
                if passed:
                    self._write(Fault.REORDER, late.channel, late.attributes, held_behind=passed)
                released.append((late, send_late))
        for late, send_late in released:
            send_late(late)
        return len(released)

    # Subscriber ----------------------------------------------------------------------------------

    def register(self, group: str, channels: list[str]) -> None:
        self._subscriptions[group] = tuple(channels)

    def crash_due(self, group: str) -> bool:
        """True when ``group`` should be down now (its crash window is open)."""
        return self._firing(Fault.CONSUMER_CRASH, group=group) is not None

    def mark_down(self, group: str) -> None:
        with self._lock:
            self._down.add(group)

    def mark_up(self, group: str) -> None:
        with self._lock:
            self._down.discard(group)

    def lost_to(self, group: str, event_id: str | None) -> bool:
        """True for an event published while ``group`` was down: it must never reach that group.

        Under the lock ``publishing`` holds from PUBLISH until the loss is noted, so a copy that arrives
        at once is not let through before the publisher has written it down.
        """
        with self._lock:
            lost = self._lost.get(group)
            return bool(lost) and event_id in lost

    def double_subscribed(self, group: str) -> bool:
        return self._firing(Fault.DOUBLE_SUBSCRIPTION, group=group) is not None

    # Arrival and delivery steps ------------------------------------------------------------------

    def lost(self, incoming: Incoming, proceed: Proceed) -> object:
        """A message published while its group was down never reaches it (Pub/Sub keeps nothing)."""
        if self.lost_to(incoming.group, incoming.id):
            return None
        return proceed(incoming)

    def second_copy(self, incoming: Incoming, proceed: Proceed) -> object:
        """Record the copy Redis delivered because of PSUBSCRIBE beside SUBSCRIBE."""
        if incoming.pattern is not None:
            self._write(Fault.DOUBLE_SUBSCRIPTION, incoming.channel, incoming.attributes, incoming.group)
        return proceed(incoming)

    def dead_lettered(self, incoming: Incoming, proceed: Proceed) -> object:
        """Record a delivery that ended in the dead-letter queue (after validation or its last attempt)."""
        result = proceed(incoming)
        ending = handling.of(incoming)
        if ending.dead_letter_reason is not None:
            detail = {"reason": ending.dead_letter_reason, "attempts": ending.attempts}
            self._write(Fault.DEAD_LETTER, incoming.channel, incoming.attributes, incoming.group, **detail)
        return result

    def slow(self, incoming: Incoming, proceed: Proceed) -> object:
        """The handler takes longer during the window; the first delivery in each window records it."""
        time.sleep(self.slow_delay_s(incoming.group, incoming.channel))
        return proceed(incoming)

    def transient(self, incoming: Incoming, proceed: Proceed) -> object:
        """This attempt fails with TransientError (recorded), as a flaky dependency does."""
        attempt = handling.of(incoming).attempt
        if self.fires(Fault.TRANSIENT_ERROR, group=incoming.group):
            self._write(Fault.TRANSIENT_ERROR, incoming.channel, incoming.attributes, incoming.group, attempt=attempt)
            raise TransientError(f"injected transient error (attempt {attempt})")
        return proceed(incoming)

    def slow_delay_s(self, group: str, channel: str) -> float:
        """Extra handling time for ``group`` now; the first call in each window records an activation."""
        setting = self._firing(Fault.SLOW_CONSUMER, group=group)
        if setting is None:
            return 0.0
        window = setting.window(self.elapsed_s())
        key = (Fault.SLOW_CONSUMER.value, group, window)
        with self._lock:
            first = key not in self._windows_seen
            self._windows_seen.add(key)
        delay_ms = setting.number("delay_ms", 0.0) or 0.0
        if first:
            limit_kb = int(setting.number("buffer_limit_kb", 0.0) or 0)
            if limit_kb:
                self._lower_buffer_limit(limit_kb)
            self._write(
                Fault.SLOW_CONSUMER,
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


STEPS: tuple[tuple[Fault, Stage, Callable], ...] = (
    (Fault.DROP_BEFORE_BROKER, Stage.PUBLISH, FaultInjector.drop),
    (Fault.CLOCK_SKEW, Stage.PUBLISH, FaultInjector.skew),
    (Fault.POISON_MESSAGE, Stage.PUBLISH, FaultInjector.poison),
    (Fault.REORDER, Stage.PUBLISH, FaultInjector.reorder),
    (Fault.DUPLICATE_PUBLISH, Stage.PUBLISH, FaultInjector.duplicate),
    (Fault.CONSUMER_CRASH, Stage.PUBLISH, FaultInjector.publishing),
    (Fault.CONSUMER_CRASH, Stage.ARRIVAL, FaultInjector.lost),
    (Fault.DOUBLE_SUBSCRIPTION, Stage.ARRIVAL, FaultInjector.second_copy),
    (Fault.DEAD_LETTER, Stage.SETTLED, FaultInjector.dead_lettered),
    (Fault.SLOW_CONSUMER, Stage.HANDLING, FaultInjector.slow),
    (Fault.TRANSIENT_ERROR, Stage.ATTEMPT, FaultInjector.transient),
)
"""Each fault's step, its stage, in the order the steps of one stage run (the first outermost)."""


def steps(injector: FaultInjector | None, stage: Stage) -> list[Callable]:
    """The fault steps of ``stage`` (none without an injector)."""
    return injector.steps(stage) if injector is not None else []


class Subscription:
    """What faults do to one consumer group's subscription itself: take it down, subscribe it twice."""

    def __init__(self, injector: FaultInjector | None, group: str, channels: list[str]):
        self._injector = injector
        self.group = group
        if injector is not None:
            injector.register(group, channels)

    def crash_due(self) -> bool:
        return self._injector is not None and self._injector.crash_due(self.group)

    def down(self) -> None:
        if self._injector is not None:
            self._injector.mark_down(self.group)

    def up(self) -> None:
        if self._injector is not None:
            self._injector.mark_up(self.group)

    def double_subscribed(self) -> bool:
        return self._injector is not None and self._injector.double_subscribed(self.group)


DEAD_LETTER_DESCRIPTION = (
    "Not switched on by itself: recorded whenever a delivery ends in the dead-letter queue (a poison "
    "message, or a transient error at the last attempt)."
)


def describe() -> list[dict]:
    """Every kind of ground-truth record as plain data (for the CLI, the docs and the dashboard's scoring):
    the switchable faults of the catalogue, then the dead letters; each says how eventscope shows it."""
    switchable = [
        {"name": str(s.name), "env": env_var(s.name), "description": s.description, "defaults": dict(s.defaults)}
        | {"switchable": True}
        for s in CATALOGUE.values()
    ]
    recorded = {"name": str(Fault.DEAD_LETTER), "env": None, "description": DEAD_LETTER_DESCRIPTION, "defaults": {}}
    return [
        entry | truth.SIGHTINGS[Fault(entry["name"])].describe()
        for entry in [*switchable, recorded | {"switchable": False}]
    ]
