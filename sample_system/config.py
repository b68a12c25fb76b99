"""Configuration of the sample system, read once from the environment passed in."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

ENV_REDIS_URL = "REDIS_URL"
ENV_RATE = "SAMPLE_RATE"
ENV_SEED = "SAMPLE_SEED"
ENV_TRACING = "SAMPLE_TRACING"
ENV_CONSUMER_PARENT = "SAMPLE_CONSUMER_PARENT"
# The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_* variables) by itself.

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_RATE = 5.0
DEFAULT_SEED = 1
CONSUMER_PARENT_MODES = ("producer", "none")


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the setting."""


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    redis_url: str
    rate: float
    seed: int
    tracing: bool
    consumer_parent: str  # "producer": the consumer span is a child of the producer span; "none": link only


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
    return SampleConfig(
        redis_url=pick("redis_url", ENV_REDIS_URL, DEFAULT_REDIS_URL),
        rate=float(_number(pick("rate", ENV_RATE, str(DEFAULT_RATE)), ENV_RATE, float)),
        seed=int(_number(pick("seed", ENV_SEED, str(DEFAULT_SEED)), ENV_SEED, int)),
        tracing=tracing in ("on", "true", "1"),
        consumer_parent=parent,
    )
