"""Request parameters of the query API: the common filters, checked once, and bound into SQL.

Every analysis endpoint accepts the same optional filters (time window, channel, consumer group,
event type, service). They are validated here, so a bad value is a 400 with a message, and they
reach SQL only as named bound parameters (``$channel``), never as text spliced into a query.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

MAX_TEXT = 512
"""Longest accepted text filter value (channel, group, type, service, ids)."""

_NAMED_PARAMETER = re.compile(r"\$([a-z_]+)")


class BadRequest(ValueError):
    """A request parameter is invalid; the message is returned to the client."""


@dataclasses.dataclass(frozen=True)
class Filters:
    """The common filters; None means "no restriction"."""

    since_ns: int | None = None
    until_ns: int | None = None
    channel: str | None = None
    group: str | None = None
    type: str | None = None
    service: str | None = None

    def values(self) -> dict:
        """The filters as named SQL parameters (``$since_ns``, ``$channel``, ...)."""
        return dataclasses.asdict(self)


def last(params: Mapping[str, list[str]], name: str) -> str | None:
    """The last value given for ``name``, or None."""
    values = params.get(name)
    return values[-1] if values else None


def text(params: Mapping[str, list[str]], name: str) -> str | None:
    """A non-empty text parameter of bounded length, or None when absent."""
    raw = last(params, name)
    if raw is None:
        return None
    if not raw or len(raw) > MAX_TEXT:
        raise BadRequest(f"{name} must be 1 to {MAX_TEXT} characters")
    return raw


def integer(params: Mapping[str, list[str]], name: str, default: int | None, low: int, high: int) -> int | None:
    """An integer parameter within [low, high], or ``default`` when absent."""
    raw = last(params, name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", raw) or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def number(params: Mapping[str, list[str]], name: str, default: float, low: float, high: float) -> float:
    """A decimal number parameter within [low, high], or ``default`` when absent."""
    raw = last(params, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # also rejects nan
        raise BadRequest(f"{name} must be a number from {low:g} to {high:g}")
    return value


def choice(params: Mapping[str, list[str]], name: str, options: tuple[str, ...], default: str) -> str:
    """One of ``options``, or ``default`` when absent."""
    raw = last(params, name)
    if raw is None:
        return default
    if raw not in options:
        raise BadRequest(f"{name} must be one of: {', '.join(options)}")
    return raw


def flag(params: Mapping[str, list[str]], name: str) -> bool | None:
    """A boolean parameter (true/false/1/0), or None when absent."""
    raw = last(params, name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false", "1", "0"):
        raise BadRequest(f"{name} must be true or false")
    return raw.lower() in ("true", "1")


def parse_filters(params: Mapping[str, list[str]]) -> Filters:
    """The common filters of a request; raises BadRequest for an invalid value."""
    since = integer(params, "since_ns", None, 0, 2**63 - 1)
    until = integer(params, "until_ns", None, 0, 2**63 - 1)
    if since is not None and until is not None and until < since:
        raise BadRequest("until_ns must not be before since_ns")
    return Filters(
        since_ns=since,
        until_ns=until,
        channel=text(params, "channel"),
        group=text(params, "group"),
        type=text(params, "type"),
        service=text(params, "service"),
    )


def window(column: str) -> str:
    """SQL keeping rows whose ``column`` (a time in ns, written in code) lies in [$since_ns, $until_ns)."""
    return f"($since_ns IS NULL OR {column} >= $since_ns) AND ($until_ns IS NULL OR {column} < $until_ns)"


def bind(sql: str, values: Mapping[str, object]) -> dict:
    """The named parameters ``sql`` uses, taken from ``values`` (DuckDB rejects unused ones)."""
    return {name: values[name] for name in set(_NAMED_PARAMETER.findall(sql))}
