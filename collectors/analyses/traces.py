"""Traces: search by service, channel, type, error, duration, event id or subject; one trace with the
span links that leave it and enter it, and its critical path.

The critical path is the chain of causes of the span that ends last: from it, step to its parent
or to a span it links to, whichever ended last, until a span with neither. Links count as well as
parents, so a consumer that only links to its producer still continues the path.
"""

from __future__ import annotations

from collectors.analyses.filters import Filters, bind, window
from collectors.storage import queries
from collectors.storage.reader import Reader

# The newest matching traces are picked first with the cheap aggregates; the summaries (service list,
# root span name) are computed only for those.
_SEARCH = f"""
WITH picked AS (
    SELECT TraceId, min(Timestamp) AS start
    FROM otel_traces
    GROUP BY TraceId
    HAVING {window("min(Timestamp)")}
       AND ($service IS NULL OR bool_or(ServiceName = $service))
       AND ($channel IS NULL OR bool_or(MsgDestination = $channel))
       AND ($type IS NULL OR bool_or(CeType = $type)) AND ($group IS NULL OR bool_or(MsgConsumerGroup = $group))
       AND ($error IS NULL OR (count(*) FILTER (StatusCode = 'Error') > 0) = $error)
       AND ($min_ms IS NULL OR (max(Timestamp + Duration) - min(Timestamp)) / 1e6 >= $min_ms)
       AND ($event_id IS NULL OR bool_or(MsgMessageId = $event_id))
       AND ($subject IS NULL OR bool_or(CeSubject = $subject))
    ORDER BY start DESC, TraceId LIMIT $limit
)
SELECT TraceId, min(Timestamp) AS start, (max(Timestamp + Duration) - min(Timestamp)) / 1e6 AS ms, count(*),
       count(*) FILTER (StatusCode = 'Error'), list(DISTINCT ServiceName ORDER BY ServiceName),
       arg_min(SpanName, (ParentSpanId <> '', Timestamp))
FROM otel_traces
WHERE TraceId IN (SELECT TraceId FROM picked)
GROUP BY TraceId
ORDER BY start DESC, TraceId
"""
_LINKS_OUT = "SELECT SpanId, LinkedTraceId, LinkedSpanId FROM span_links WHERE TraceId = $trace ORDER BY ALL"
_LINKS_IN = """
SELECT l.LinkedSpanId, l.TraceId, l.SpanId, s.ServiceName, s.SpanName
FROM span_links l LEFT JOIN otel_traces s ON s.TraceId = l.TraceId AND s.SpanId = l.SpanId
WHERE l.LinkedTraceId = $trace AND l.TraceId <> $trace ORDER BY ALL
"""


def search(
    cursor: Reader, filters: Filters, error: bool | None, min_ms: float | None, event_id, subject, limit: int
) -> list:
    """Trace summaries, newest first, of traces with a span matching every given criterion."""
    values = {**filters.values(), "error": error, "min_ms": min_ms, "event_id": event_id, "subject": subject}
    values["limit"] = limit
    rows = cursor.execute(_SEARCH, bind(_SEARCH, values)).fetchall()
    return [
        {
            "trace_id": trace_id,
            "start_ns": start,
            "duration_ms": ms,
            "spans": spans,
            "errors": errors,
            "services": services,
            "root_name": root,
        }
        for trace_id, start, ms, spans, errors, services, root in rows
    ]


def critical_path(spans: list[dict], links: list[tuple[str, str]]) -> list[str]:
    """Span ids from the first cause to the span that ends last (links given as (span, linked span))."""
    if not spans:
        return []
    end = {s["span_id"]: s["start_ns"] + s["duration_ns"] for s in spans}
    causes: dict[str, set[str]] = {s["span_id"]: {s["parent_span_id"]} & end.keys() for s in spans}
    for span_id, linked in links:
        if span_id in causes and linked in end and linked != span_id:
            causes[span_id].add(linked)
    latest = lambda span_ids: max(span_ids, key=lambda span_id: (end[span_id], span_id))  # noqa: E731
    path = [latest(end)]
    while options := causes[path[-1]] - set(path):
        path.append(latest(options))
    return path[::-1]


def trace(cursor: Reader, trace_id: str) -> dict | None:
    """One trace with its spans, its links out and in, and its critical path; None if unknown."""
    spans = queries.trace(cursor, trace_id)
    if not spans:
        return None
    out = cursor.execute(_LINKS_OUT, {"trace": trace_id}).fetchall()
    into = cursor.execute(_LINKS_IN, {"trace": trace_id}).fetchall()
    return {
        "trace_id": trace_id,
        "spans": spans,
        "links_out": [{"span_id": s, "trace_id": t, "linked_span_id": ls} for s, t, ls in out],
        "links_in": [
            {"span_id": s, "linked_trace_id": t, "linked_span_id": ls, "service": service, "name": name}
            for s, t, ls, service, name in into
        ],
        "critical_path": critical_path(spans, [(s, ls) for s, t, ls in out if t == trace_id]),
    }
