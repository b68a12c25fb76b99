"""The read-only query API (``/api/v1/...``): routes, parameters, JSON answers.

Handlers take a store reader (collectors/storage/reader.py) and the parsed query string and return
(status, payload). Request values are checked in collectors/analyses/filters.py and reach SQL only as bound
parameters. The OpenAPI document of these routes is collectors/serving/openapi.py.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping

from collectors.analyses import (
    duplicates,
    event_life,
    flow,
    instrumentation,
    latency,
    loss,
    overview,
    report,
    sequences,
    slow_consumers,
    traces,
)
from collectors.analyses.filters import BadRequest, choice, flag, integer, number, parse_filters, text
from collectors.bus import broker_stats
from collectors.contracts import findings, observed
from collectors.contracts import registry as contract_registry
from collectors.serving import openapi
from collectors.storage import queries
from collectors.storage.reader import Reader

API_PREFIX = "/api/v1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_SEQUENCE_LIMIT = 100_000
MAX_GRACE_S = 86400 * 365
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
NO_REGISTRY = "the collectors were started without a schema registry (serve --registry PATH, or EVENTSCOPE_REGISTRY)"

__all__ = ["API_PREFIX", "BadRequest", "ROUTES", "handle"]


def _limit(params: Mapping[str, list[str]], default: int = DEFAULT_LIMIT, high: int = MAX_LIMIT) -> int:
    return integer(params, "limit", default, 1, high)


def _grace(params: Mapping[str, list[str]]) -> float:
    return number(params, "grace_s", report.DEFAULT_GRACE_S, 0, MAX_GRACE_S)


def _report(cursor, params, match) -> tuple[int, dict]:
    return 200, report.report(cursor, parse_filters(params), _grace(params))


def _overview(cursor, params, match) -> tuple[int, dict]:
    return 200, overview.overview(cursor, parse_filters(params), _grace(params))


def _flow(cursor, params, match) -> tuple[int, dict]:
    return 200, flow.flow(cursor, parse_filters(params))


def _latency(cursor, params, match) -> tuple[int, dict]:
    bucket_s = integer(params, "bucket_s", 10, 1, 86400)
    by = choice(params, "by", latency.BY, "channel")
    return 200, latency.latency(cursor, parse_filters(params), bucket_s, by)


def _loss(cursor, params, match) -> tuple[int, dict]:
    return 200, loss.loss(cursor, parse_filters(params), _grace(params))


def _sequences(cursor, params, match) -> tuple[int, dict]:
    filters = parse_filters(params)
    source = text(params, "source")
    if filters.channel is None:
        raise BadRequest("channel is required")
    vantage = text(params, "vantage") or "bus"
    limit = _limit(params, 2000, MAX_SEQUENCE_LIMIT)
    answer = sequences.sequences(cursor, filters, source, text(params, "partitionkey"), vantage, limit, _grace(params))
    return 200, answer


def _duplicates(cursor, params, match) -> tuple[int, dict]:
    return 200, duplicates.duplicates(cursor, parse_filters(params))


def _traces(cursor, params, match) -> tuple[int, dict]:
    found = traces.search(
        cursor,
        parse_filters(params),
        flag(params, "error"),
        number(params, "min_ms", None, 0, 1e12),
        text(params, "event_id"),
        text(params, "subject"),
        _limit(params),
    )
    return 200, {"traces": found}


def _trace(cursor, params, match) -> tuple[int, dict]:
    trace_id = match.group(1).lower()
    if not _TRACE_ID.match(trace_id):
        raise BadRequest("trace id must be 32 hex characters")
    answer = traces.trace(cursor, trace_id)
    if answer is None:
        return 404, {"error": f"trace {trace_id} not found"}
    return 200, answer


def _event(cursor, params, match) -> tuple[int, dict]:
    event_id = text({"event id": [urllib.parse.unquote(match.group(1))]}, "event id")
    answer = event_life.event(cursor, event_id)
    if answer is None:
        return 404, {"error": f"nothing is known of event {event_id}"}
    return 200, answer


def _dead_letters(cursor, params, match) -> tuple[int, dict]:
    return 200, {"dead_letters": event_life.dead_letters(cursor, parse_filters(params))}


def _retries(cursor, params, match) -> tuple[int, dict]:
    return 200, event_life.retried(cursor, parse_filters(params), _limit(params))


def _clock_skew(cursor, params, match) -> tuple[int, dict]:
    return 200, latency.clock_skew(cursor, parse_filters(params), _limit(params))


def _slow_consumers(cursor, params, match) -> tuple[int, dict]:
    return 200, slow_consumers.slow_consumers(
        cursor,
        parse_filters(params),
        integer(params, "bucket_s", slow_consumers.DEFAULT_BUCKET_S, 1, 3600),
        number(params, "min_ms", slow_consumers.DEFAULT_MIN_MS, 0, 86_400_000),
        number(params, "factor", slow_consumers.DEFAULT_FACTOR, 1, 1000),
        integer(params, "min_buckets", slow_consumers.DEFAULT_MIN_BUCKETS, 1, 1000),
    )


def _broker(cursor, params, match) -> tuple[int, dict]:
    filters = parse_filters(params)
    return 200, broker_stats.snapshot(cursor, filters.since_ns, filters.until_ns)


def _instrumentation(cursor, params, match) -> tuple[int, dict]:
    settle_s = number(params, "settle_s", instrumentation.DEFAULT_SETTLE_S, 0, MAX_GRACE_S)
    return 200, instrumentation.instrumentation(cursor, parse_filters(params), settle_s)


def _messages(cursor, params, match) -> tuple[int, dict]:
    return 200, {"messages": queries.messages(cursor, _limit(params))}


def _malformed(cursor, params, match) -> tuple[int, dict]:
    count = queries.counts(cursor)["malformed"]
    return 200, {"count": count, "messages": queries.messages(cursor, _limit(params), True)}


def _observed(cursor, params, match) -> tuple[int, dict]:
    per_key = integer(params, "payloads", observed.DEFAULT_PAYLOADS, 0, observed.MAX_PAYLOADS)
    return 200, observed.observed(cursor, parse_filters(params), per_key)


def _contracts(cursor, params, match, registry: str | None) -> tuple[int, dict]:
    """Findings against the registry the collectors were started with (re-read each time: edits show at once)."""
    if registry is None:
        return 200, {"ok": None, "registry": None, "findings": [], "counts": {}, "note": NO_REGISTRY}
    try:
        loaded = contract_registry.load(registry)
    except contract_registry.RegistryError as exc:
        return 200, {"ok": None, "registry": None, "findings": [], "counts": {}, "note": str(exc)}
    return 200, findings.report(loaded, _observed(cursor, params, match)[1], registry)


def _openapi(cursor, params, match) -> tuple[int, dict]:
    return 200, openapi.document()


ROUTES: list[tuple[re.Pattern, Callable]] = [
    (re.compile(rf"^{API_PREFIX}/report$"), _report),
    (re.compile(rf"^{API_PREFIX}/overview$"), _overview),
    (re.compile(rf"^{API_PREFIX}/flow$"), _flow),
    (re.compile(rf"^{API_PREFIX}/latency$"), _latency),
    (re.compile(rf"^{API_PREFIX}/loss$"), _loss),
    (re.compile(rf"^{API_PREFIX}/sequences$"), _sequences),
    (re.compile(rf"^{API_PREFIX}/duplicates$"), _duplicates),
    (re.compile(rf"^{API_PREFIX}/traces$"), _traces),
    (re.compile(rf"^{API_PREFIX}/traces/([^/]+)$"), _trace),
    (re.compile(rf"^{API_PREFIX}/events/([^/]+)$"), _event),
    (re.compile(rf"^{API_PREFIX}/dead-letters$"), _dead_letters),
    (re.compile(rf"^{API_PREFIX}/retries$"), _retries),
    (re.compile(rf"^{API_PREFIX}/clock-skew$"), _clock_skew),
    (re.compile(rf"^{API_PREFIX}/slow-consumers$"), _slow_consumers),
    (re.compile(rf"^{API_PREFIX}/broker$"), _broker),
    (re.compile(rf"^{API_PREFIX}/instrumentation$"), _instrumentation),
    (re.compile(rf"^{API_PREFIX}/messages$"), _messages),
    (re.compile(rf"^{API_PREFIX}/malformed$"), _malformed),
    (re.compile(rf"^{API_PREFIX}/contracts/observed$"), _observed),
    (re.compile(rf"^{API_PREFIX}/contracts$"), _contracts),
    (re.compile(rf"^{API_PREFIX}/openapi\.json$"), _openapi),
]
_WITH_REGISTRY = frozenset({_contracts})
"""Handlers that also take the registry directory the collectors were started with."""


def handle(cursor: Reader, path: str, params: Mapping[str, list[str]], registry: str | None = None) -> tuple[int, dict]:
    """Route one GET request; unknown paths answer 404, bad parameters 400."""
    for pattern, handler in ROUTES:
        match = pattern.match(path)
        if match:
            try:
                if handler in _WITH_REGISTRY:
                    return handler(cursor, params, match, registry)
                return handler(cursor, params, match)
            except BadRequest as exc:
                return 400, {"error": str(exc)}
    return 404, {"error": f"no such endpoint: {path}"}
