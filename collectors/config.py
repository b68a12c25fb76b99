"""Configuration of the collectors process, read once from the environment passed in.

Every environment variable name is written here and nowhere else; CLI flags fall back to them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

ENV_LISTEN = "EVENTSCOPE_LISTEN"
ENV_REDIS_URL = "REDIS_URL"
ENV_STORE = "EVENTSCOPE_STORE"
ENV_TAP_PATTERNS = "EVENTSCOPE_TAP_PATTERNS"
ENV_API = "EVENTSCOPE_API"
ENV_MAX_BODY = "EVENTSCOPE_MAX_BODY_BYTES"
ENV_QUEUE_LIMIT = "EVENTSCOPE_WRITE_QUEUE_LIMIT"

DEFAULT_LISTEN = "127.0.0.1:4318"
DEFAULT_STORE = ".eventscope/store.duckdb"
DEFAULT_TAP_PATTERNS = ("*",)
DEFAULT_API = "http://127.0.0.1:4318"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_QUEUE_LIMIT = 256


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the setting."""


@dataclasses.dataclass(frozen=True)
class Config:
    host: str
    port: int
    redis_url: str | None
    store_path: str
    tap_patterns: tuple[str, ...]
    max_body_bytes: int
    queue_limit: int


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


def load_config(environ: Mapping[str, str], **flags: str | None) -> Config:
    """Build the Config from CLI flags, falling back to environment variables, then defaults."""

    def pick(flag: str, env: str, default: str | None) -> str | None:
        value = flags.get(flag)
        return value if value is not None else environ.get(env, default)

    host, port = parse_listen(pick("listen", ENV_LISTEN, DEFAULT_LISTEN) or "", "--listen/" + ENV_LISTEN)
    patterns = pick("tap_patterns", ENV_TAP_PATTERNS, ",".join(DEFAULT_TAP_PATTERNS)) or ""
    tap_patterns = tuple(p.strip() for p in patterns.split(",") if p.strip())
    return Config(
        host=host,
        port=port,
        redis_url=pick("redis_url", ENV_REDIS_URL, None) or None,
        store_path=pick("store", ENV_STORE, DEFAULT_STORE) or DEFAULT_STORE,
        tap_patterns=tap_patterns,
        max_body_bytes=_positive_int(environ.get(ENV_MAX_BODY, str(DEFAULT_MAX_BODY_BYTES)), ENV_MAX_BODY),
        queue_limit=_positive_int(environ.get(ENV_QUEUE_LIMIT, str(DEFAULT_QUEUE_LIMIT)), ENV_QUEUE_LIMIT),
    )


def api_url(environ: Mapping[str, str], flag: str | None = None) -> str:
    """The query API base URL for clients (CLI, dashboard)."""
    return (flag or environ.get(ENV_API) or DEFAULT_API).rstrip("/")
