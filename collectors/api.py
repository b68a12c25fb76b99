"""The read-only query API (``/api/v1/...``): routes, parameters, JSON answers.

Handlers take a store cursor and the parsed query string and return (status, payload). Request
values reach SQL only as bound parameters (collectors/queries.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from collectors import queries, report
from collectors.filters import BadRequest, number, parse_filters

API_PREFIX = "/api/v1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def _limit(params: Mapping[str, list[str]]) -> int:
    raw = params.get("limit", [str(DEFAULT_LIMIT)])[-1]
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _report(cursor, params, match) -> tuple[int, dict]:
    grace_s = number(params, "grace_s", report.DEFAULT_GRACE_S, 0, 86400 * 365)
    return 200, report.report(cursor, parse_filters(params), grace_s)


def _trace(cursor, params, match) -> tuple[int, dict]:
    trace_id = match.group(1).lower()
    if not _TRACE_ID.match(trace_id):
        raise BadRequest("trace id must be 32 hex characters")
    spans = queries.trace(cursor, trace_id)
    if not spans:
        return 404, {"error": f"trace {trace_id} not found"}
    return 200, {"trace_id": trace_id, "spans": spans}


def _messages(cursor, params, match) -> tuple[int, dict]:
    return 200, {"messages": queries.messages(cursor, _limit(params))}


def _malformed(cursor, params, match) -> tuple[int, dict]:
    count = queries.counts(cursor)["malformed"]
    return 200, {"count": count, "messages": queries.messages(cursor, _limit(params), True)}


ROUTES: list[tuple[re.Pattern, Callable]] = [
    (re.compile(rf"^{API_PREFIX}/report$"), _report),
    (re.compile(rf"^{API_PREFIX}/traces/([^/]+)$"), _trace),
    (re.compile(rf"^{API_PREFIX}/messages$"), _messages),
    (re.compile(rf"^{API_PREFIX}/malformed$"), _malformed),
]


def handle(cursor, path: str, params: Mapping[str, list[str]]) -> tuple[int, dict]:
    """Route one GET request; unknown paths answer 404, bad parameters 400."""
    for pattern, handler in ROUTES:
        match = pattern.match(path)
        if match:
            try:
                return handler(cursor, params, match)
            except BadRequest as exc:
                return 400, {"error": str(exc)}
    return 404, {"error": f"no such endpoint: {path}"}
