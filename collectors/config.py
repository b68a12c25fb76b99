"""Configuration of the collectors process, read once from the environment passed in.

Every environment variable name is written here and nowhere else; CLI flags fall back to them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping

from collectors.storage import spec

ENV_LISTEN = "EVENTSCOPE_LISTEN"
ENV_REDIS_URL = "REDIS_URL"
ENV_STORE = "EVENTSCOPE_STORE"
ENV_TAP_PATTERNS = "EVENTSCOPE_TAP_PATTERNS"
ENV_API = "EVENTSCOPE_API"
ENV_MAX_BODY = "EVENTSCOPE_MAX_BODY_BYTES"
ENV_QUEUE_LIMIT = "EVENTSCOPE_WRITE_QUEUE_LIMIT"
ENV_GRPC_LISTEN = "EVENTSCOPE_GRPC_LISTEN"
ENV_MAX_IN_FLIGHT = "EVENTSCOPE_MAX_IN_FLIGHT"
ENV_MAX_IN_FLIGHT_BYTES = "EVENTSCOPE_MAX_IN_FLIGHT_BYTES"
ENV_BROKER_POLL_S = "EVENTSCOPE_BROKER_POLL_S"
ENV_RETENTION_AGE_S = "EVENTSCOPE_RETENTION_AGE_S"
ENV_RETENTION_MAX_SPANS = "EVENTSCOPE_RETENTION_MAX_SPANS"
ENV_RETENTION_INTERVAL_S = "EVENTSCOPE_RETENTION_INTERVAL_S"
ENV_STORE_MEMORY = "EVENTSCOPE_STORE_MEMORY_LIMIT"
ENV_TOKEN = "EVENTSCOPE_TOKEN"
ENV_REQUEST_DEADLINE_S = "EVENTSCOPE_REQUEST_DEADLINE_S"
ENV_REGISTRY = "EVENTSCOPE_REGISTRY"
ENV_REDIS_CLUSTER = "EVENTSCOPE_REDIS_CLUSTER"
ENV_TAP_SHARD_CHANNELS = "EVENTSCOPE_TAP_SHARD_CHANNELS"

DEFAULT_LISTEN = "127.0.0.1:4318"
DEFAULT_STORE = ".eventscope/store.duckdb"
DEFAULT_TAP_PATTERNS = ("*",)
DEFAULT_API = "http://127.0.0.1:4318"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_QUEUE_LIMIT = 256
DEFAULT_GRPC_LISTEN = "127.0.0.1:4317"
GRPC_OFF = "off"  # the --grpc-listen value that disables OTLP/gRPC
DEFAULT_MAX_IN_FLIGHT = 32  # export requests being decoded or committed at once (HTTP and gRPC each)
DEFAULT_MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024  # request bodies held in memory at once (HTTP)
DEFAULT_BROKER_POLL_S = 5.0  # 0 disables the broker stats poller
DEFAULT_RETENTION_AGE_S = 0.0  # 0 keeps data of any age
DEFAULT_RETENTION_MAX_SPANS = 0  # 0 keeps any number of spans
DEFAULT_RETENTION_INTERVAL_S = 60.0
DEFAULT_REQUEST_DEADLINE_S = 30.0  # an OTLP/HTTP body must arrive whole within this, however it trickles
DEFAULT_STORE_MEMORY = "512MiB"  # DuckDB's memory_limit: cached blocks beyond it are evicted, queries spill
_SWITCH = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_SWITCH[""] = False
_MEMORY_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)$", re.IGNORECASE)


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the setting."""


@dataclasses.dataclass(frozen=True)
class Config:
    host: str
    port: int
    redis_url: str | None
    # the store: a DuckDB path, duckdb:PATH, chdb:PATH or clickhouse://... (storage/spec.py); may hold a password
    store_path: str = dataclasses.field(repr=False)
    tap_patterns: tuple[str, ...]
    max_body_bytes: int
    queue_limit: int
    grpc_listen: tuple[str, int] | None = None
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    max_in_flight_bytes: int = DEFAULT_MAX_IN_FLIGHT_BYTES
    broker_poll_s: float = DEFAULT_BROKER_POLL_S
    retention_age_s: float = DEFAULT_RETENTION_AGE_S
    retention_max_spans: int = DEFAULT_RETENTION_MAX_SPANS
    retention_interval_s: float = DEFAULT_RETENTION_INTERVAL_S
    store_memory_limit: str = DEFAULT_STORE_MEMORY
    request_deadline_s: float = DEFAULT_REQUEST_DEADLINE_S
    token: str | None = dataclasses.field(default=None, repr=False)  # bearer token on ingest and API; None: open
    registry: str | None = None  # schema registry directory for the contract checks (docs/contracts.md); None: none
    redis_cluster: bool = False  # REDIS_URL names one node of a Redis Cluster: the tap and the poller follow every node
    tap_shard_channels: tuple[str, ...] = ()  # sharded channels the tap subscribes to before anyone else does


def parse_listen(value: str, name: str = ENV_LISTEN) -> tuple[str, int]:
    """Split ``host:port``; a bad value raises ConfigError naming the setting."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{name}: expected host:port, got {value!r}")
    return host.strip("[]"), int(port)


def _positive_int(value: str, name: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _non_negative_int(value: str, name: str) -> int:
    if not value.isdigit():
        raise ConfigError(f"{name}: expected a whole number >= 0, got {value!r}")
    return int(value)


def _seconds(value: str, name: str, allow_zero: bool = True) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not (seconds > 0 or (allow_zero and seconds == 0)) or seconds != seconds or seconds == float("inf"):
        raise ConfigError(f"{name}: expected a number of seconds {'>=' if allow_zero else '>'} 0, got {value!r}")
    return seconds


def _memory_size(value: str, name: str) -> str:
    if not _MEMORY_SIZE.match(value.strip()):
        raise ConfigError(f"{name}: expected a size such as 512MiB or 2GB, got {value!r}")
    return value.strip()


def _switch(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in _SWITCH:
        raise ConfigError(f"{name}: expected 1 or 0 (true/false, yes/no, on/off), got {value!r}")
    return _SWITCH[lowered]


def _names(value: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _grpc_listen(value: str) -> tuple[str, int] | None:
    if value.strip().lower() == GRPC_OFF:
        return None
    return parse_listen(value, "--grpc-listen/" + ENV_GRPC_LISTEN)


def load_config(environ: Mapping[str, str], **flags: str | None) -> Config:
    """Build the Config from CLI flags, falling back to environment variables, then defaults."""

    def pick(flag: str, env: str, default: str | None) -> str | None:
        value = flags.get(flag)
        return value if value is not None else environ.get(env, default)

    host, port = parse_listen(pick("listen", ENV_LISTEN, DEFAULT_LISTEN) or "", "--listen/" + ENV_LISTEN)
    tap_patterns = _names(pick("tap_patterns", ENV_TAP_PATTERNS, ",".join(DEFAULT_TAP_PATTERNS)) or "")
    return Config(
        host=host,
        port=port,
        redis_url=pick("redis_url", ENV_REDIS_URL, None) or None,
        store_path=_store(pick("store", ENV_STORE, DEFAULT_STORE) or DEFAULT_STORE),
        tap_patterns=tap_patterns,
        max_body_bytes=_positive_int(environ.get(ENV_MAX_BODY, str(DEFAULT_MAX_BODY_BYTES)), ENV_MAX_BODY),
        queue_limit=_positive_int(environ.get(ENV_QUEUE_LIMIT, str(DEFAULT_QUEUE_LIMIT)), ENV_QUEUE_LIMIT),
        grpc_listen=_grpc_listen(pick("grpc_listen", ENV_GRPC_LISTEN, DEFAULT_GRPC_LISTEN) or ""),
        max_in_flight=_positive_int(environ.get(ENV_MAX_IN_FLIGHT, str(DEFAULT_MAX_IN_FLIGHT)), ENV_MAX_IN_FLIGHT),
        max_in_flight_bytes=_positive_int(
            environ.get(ENV_MAX_IN_FLIGHT_BYTES, str(DEFAULT_MAX_IN_FLIGHT_BYTES)), ENV_MAX_IN_FLIGHT_BYTES
        ),
        broker_poll_s=_seconds(
            pick("broker_poll_s", ENV_BROKER_POLL_S, str(DEFAULT_BROKER_POLL_S)) or "",
            "--broker-poll-s/" + ENV_BROKER_POLL_S,
        ),
        retention_age_s=_seconds(
            pick("retention_age_s", ENV_RETENTION_AGE_S, str(DEFAULT_RETENTION_AGE_S)) or "",
            "--retention-age-s/" + ENV_RETENTION_AGE_S,
        ),
        retention_max_spans=_non_negative_int(
            pick("retention_max_spans", ENV_RETENTION_MAX_SPANS, str(DEFAULT_RETENTION_MAX_SPANS)) or "",
            "--retention-max-spans/" + ENV_RETENTION_MAX_SPANS,
        ),
        retention_interval_s=_seconds(
            environ.get(ENV_RETENTION_INTERVAL_S, str(DEFAULT_RETENTION_INTERVAL_S)), ENV_RETENTION_INTERVAL_S, False
        ),
        store_memory_limit=_memory_size(environ.get(ENV_STORE_MEMORY, DEFAULT_STORE_MEMORY), ENV_STORE_MEMORY),
        request_deadline_s=_seconds(
            environ.get(ENV_REQUEST_DEADLINE_S, str(DEFAULT_REQUEST_DEADLINE_S)), ENV_REQUEST_DEADLINE_S, False
        ),
        token=token(environ),
        registry=_directory(pick("registry", ENV_REGISTRY, None) or None, "--registry/" + ENV_REGISTRY),
        redis_cluster=_switch(
            pick("redis_cluster", ENV_REDIS_CLUSTER, "0") or "", "--redis-cluster/" + ENV_REDIS_CLUSTER
        ),
        tap_shard_channels=_names(pick("tap_shard_channels", ENV_TAP_SHARD_CHANNELS, "") or ""),
    )


def _store(value: str) -> str:
    try:
        spec.parse(value)
    except spec.StoreSpecError as exc:
        raise ConfigError(f"--store/{ENV_STORE}: {exc}") from None
    return value


def _directory(value: str | None, name: str) -> str | None:
    if value is not None and not os.path.isdir(value):
        raise ConfigError(f"{name}: {value!r} is not a directory")
    return value


def token(environ: Mapping[str, str]) -> str | None:
    """The bearer token from EVENTSCOPE_TOKEN (None when unset or empty); the server and the CLIs read it here."""
    value = environ.get(ENV_TOKEN, "").strip()
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in value):
        raise ConfigError(f"{ENV_TOKEN}: use printable ASCII without spaces")
    return value or None


def registry_path(environ: Mapping[str, str], flag: str | None = None) -> str | None:
    """The schema registry directory for clients (the contracts command): the flag, else EVENTSCOPE_REGISTRY."""
    return flag or environ.get(ENV_REGISTRY) or None


def api_url(environ: Mapping[str, str], flag: str | None = None) -> str:
    """The query API base URL for clients (CLI, dashboard)."""
    return (flag or environ.get(ENV_API) or DEFAULT_API).rstrip("/")
