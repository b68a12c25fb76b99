"""Configuration of the sample system, read once from the environment passed in."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

ENV_REDIS_URL = "REDIS_URL"
ENV_RATE = "SAMPLE_RATE"
ENV_SEED = "SAMPLE_SEED"
ENV_TRACING = "SAMPLE_TRACING"
ENV_CONSUMER_PARENT = "SAMPLE_CONSUMER_PARENT"
ENV_V1_SHARE = "SAMPLE_V1_SHARE"
ENV_BURST_EVERY_S = "SAMPLE_BURST_EVERY_S"
ENV_BURST_SIZE = "SAMPLE_BURST_SIZE"
ENV_DEDUPE_WINDOW_S = "SAMPLE_DEDUPE_WINDOW_S"
ENV_MAX_ATTEMPTS = "SAMPLE_MAX_ATTEMPTS"
ENV_BACKOFF_MS = "SAMPLE_BACKOFF_MS"
ENV_REDIS_CLUSTER = "EVENTSCOPE_REDIS_CLUSTER"  # REDIS_URL names a node of a Redis Cluster: sharded channels
# The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_* variables) by itself.

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_RATE = 5.0
DEFAULT_SEED = 1
CONSUMER_PARENT_MODES = ("producer", "none")
DEFAULT_V1_SHARE = 0.2  # share of orders the legacy orders instance publishes as OrderPlaced v1
DEFAULT_BURST_EVERY_S = 20.0  # a burst of orders this often (0 = no bursts)
DEFAULT_BURST_SIZE = 20
DEFAULT_DEDUPE_WINDOW_S = 600
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_BACKOFF_MS = 20.0  # the first retry delay; each next one doubles
SWITCH = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
SWITCH[""] = False


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the setting."""


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    redis_url: str
    rate: float
    seed: int
    tracing: bool
    consumer_parent: str  # "producer": the consumer span is a child of the producer span; "none": link only
    v1_share: float = DEFAULT_V1_SHARE
    burst_every_s: float = DEFAULT_BURST_EVERY_S
    burst_size: int = DEFAULT_BURST_SIZE
    dedupe_window_s: int = DEFAULT_DEDUPE_WINDOW_S
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_ms: float = DEFAULT_BACKOFF_MS
    redis_cluster: bool = False  # the shop runs on a Redis Cluster, its events on sharded channels


def _number(value: str, name: str, kind: type) -> float | int:
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if number < 0:
        raise ConfigError(f"{name}: must not be negative, got {value!r}")
    return number


def load_config(environ: Mapping[str, str], **flags: object) -> SampleConfig:
    """Build the config from CLI flags, then environment variables, then defaults."""

    def pick(flag: str, env: str, default: str) -> str:
        value = flags.get(flag)
        return str(value) if value is not None else environ.get(env, default)

    tracing = pick("tracing", ENV_TRACING, "on").lower()
    if tracing not in ("on", "off", "true", "false", "1", "0"):
        raise ConfigError(f"{ENV_TRACING}: expected on or off, got {tracing!r}")
    parent = pick("consumer_parent", ENV_CONSUMER_PARENT, "producer")
    if parent not in CONSUMER_PARENT_MODES:
        raise ConfigError(f"{ENV_CONSUMER_PARENT}: expected one of {CONSUMER_PARENT_MODES}, got {parent!r}")

    def number(flag: str, env: str, default: float, kind: type) -> float | int:
        return kind(_number(pick(flag, env, str(default)), env, kind))

    v1_share = float(number("v1_share", ENV_V1_SHARE, DEFAULT_V1_SHARE, float))
    if v1_share > 1:
        raise ConfigError(f"{ENV_V1_SHARE}: must be between 0 and 1, got {v1_share}")
    max_attempts = int(number("max_attempts", ENV_MAX_ATTEMPTS, DEFAULT_MAX_ATTEMPTS, int))
    if max_attempts < 1:
        raise ConfigError(f"{ENV_MAX_ATTEMPTS}: must be at least 1, got {max_attempts}")
    cluster = pick("redis_cluster", ENV_REDIS_CLUSTER, "0").strip().lower()
    if cluster not in SWITCH:
        raise ConfigError(f"{ENV_REDIS_CLUSTER}: expected 1 or 0, got {cluster!r}")
    return SampleConfig(
        redis_url=pick("redis_url", ENV_REDIS_URL, DEFAULT_REDIS_URL),
        rate=float(number("rate", ENV_RATE, DEFAULT_RATE, float)),
        seed=int(number("seed", ENV_SEED, DEFAULT_SEED, int)),
        tracing=tracing in ("on", "true", "1"),
        consumer_parent=parent,
        v1_share=v1_share,
        burst_every_s=float(number("burst_every_s", ENV_BURST_EVERY_S, DEFAULT_BURST_EVERY_S, float)),
        burst_size=int(number("burst_size", ENV_BURST_SIZE, DEFAULT_BURST_SIZE, int)),
        dedupe_window_s=int(number("dedupe_window_s", ENV_DEDUPE_WINDOW_S, DEFAULT_DEDUPE_WINDOW_S, int)),
        max_attempts=max_attempts,
        backoff_ms=float(number("backoff_ms", ENV_BACKOFF_MS, DEFAULT_BACKOFF_MS, float)),
        redis_cluster=SWITCH[cluster],
    )
