"""Latency: delivery, processing and end to end, as p50/p95/p99 per key and per time bucket.

- delivery: producer span start to consumer span start (raw clocks; negative values are kept and
  counted, never corrected, because they reveal clock skew);
- processing: the consumer span's duration;
- end to end: per causal flow (traces joined by span links, docs/analyses.md), the first producer
  start to the last consumer end.
"""

from __future__ import annotations

from collectors.analyses import roles
from collectors.analyses.deliveries import DELIVERIES
from collectors.analyses.filters import Filters, bind, window
from collectors.storage.reader import Reader

BY = ("channel", "group", "type")
MAX_SAMPLES = 5000
"""Raw samples returned for histograms, drawn reproducibly from all measures."""

# Traces joined by a span link in either direction form one flow, named by its smallest trace id. Only
# traces with a link to another trace are listed; every other trace is a flow of its own. Each trace starts
# with the smallest id among itself and its neighbours, and the smallest id spreads along the links until
# nothing changes: a step revisits only the traces whose name just changed.
FLOWS = """
WITH RECURSIVE edges AS (
    SELECT DISTINCT TraceId AS a, LinkedTraceId AS b FROM span_links WHERE TraceId <> LinkedTraceId
    UNION SELECT DISTINCT LinkedTraceId, TraceId FROM span_links WHERE TraceId <> LinkedTraceId
),
named(trace_id, flow) USING KEY (trace_id) AS (
    SELECT a, least(a, min(b)) FROM edges GROUP BY a
    UNION
    SELECT e.b, min(w.flow)
    FROM named w JOIN edges e ON e.a = w.trace_id JOIN recurring.named r ON r.trace_id = e.b
    WHERE w.flow < r.flow
    GROUP BY e.b
)
SELECT trace_id, flow FROM named
"""

_DELIVERY_SAMPLES = f"""
SELECT m.measure, t, channel, "group", type,
       CASE m.measure WHEN 'delivery' THEN (t - producer_t) / 1e6 ELSE duration / 1e6 END AS ms
FROM ({DELIVERIES}) d CROSS JOIN (VALUES ('delivery'), ('processing')) m(measure)
WHERE m.measure = 'processing' OR producer_t IS NOT NULL
"""
TRACE_FLOWS = "trace_flows"
"""The table of ``FLOWS`` the writer keeps (collectors/storage/flows.py)."""
FLOW_ENDS = "flow_ends"
"""The table of ``END_TO_END`` the writer keeps (collectors/storage/flows.py)."""

END_TO_END = f"""
WITH flows AS ({FLOWS}),
flow_spans AS (
    SELECT COALESCE(f.flow, s.TraceId) AS flow, s.TraceId, s.SpanId, s.Timestamp, s.Duration, s.MsgDestination,
           s.CeType,
           CASE WHEN {roles.publish("s")} THEN 'Producer' ELSE 'Consumer' END AS SpanKind,
           COALESCE(s.MsgConsumerGroup, s.ServiceName) AS grp
    FROM otel_traces s LEFT JOIN flows f ON f.trace_id = s.TraceId
    WHERE {roles.publish("s")} OR {roles.delivery("s")}
)
SELECT flow, min(Timestamp) FILTER (SpanKind = 'Producer') AS start,
       max(Timestamp + Duration) FILTER (SpanKind = 'Consumer') AS finish,
       arg_min(MsgDestination, (Timestamp, TraceId, SpanId)) FILTER (SpanKind = 'Producer') AS channel,
       arg_min(CeType, (Timestamp, TraceId, SpanId)) FILTER (SpanKind = 'Producer') AS type,
       arg_max(grp, (Timestamp + Duration, TraceId, SpanId)) FILTER (SpanKind = 'Consumer') AS grp
FROM flow_spans GROUP BY flow
"""
"""Per causal flow with a publish or a delivery: the first publish's start, channel and type, and the last
delivery's end and group (spans at the same instant told apart by their ids, so that the answer never depends on
the order the spans were stored in); the definition of the ``FLOW_ENDS`` table the writer keeps."""
_END_TO_END_SAMPLES = f"""
SELECT 'end_to_end' AS measure, start AS t, channel, grp AS "group", type, (finish - start) / 1e6 AS ms
FROM {FLOW_ENDS} WHERE start IS NOT NULL AND finish IS NOT NULL
  AND {window("start")}
  AND ($channel IS NULL OR channel = $channel) AND ($group IS NULL OR grp = $group)
  AND ($type IS NULL OR type = $type)
"""

# Every figure of one set of samples in one statement, so the samples are computed once. ``part``
# says which figure a row belongs to: 1 summary, 2 bucket, 3 raw sample (``h`` orders them), 4 the
# negative delivery count. Deliveries and end to end are two statements: together they would hold
# both pairings' hash tables at once, which a small memory limit cannot.
_FIGURES = """
WITH s AS MATERIALIZED (
    SELECT CASE $by WHEN 'channel' THEN channel WHEN 'group' THEN "group" ELSE type END AS key, measure,
           (t // $bucket_ns) * $bucket_ns AS bucket, ms
    FROM (__SAMPLES__)
)
SELECT 1 AS part, NULL::BIGINT AS bucket, key, measure, count(*) AS n, quantile_cont(ms, 0.5) AS p50,
       quantile_cont(ms, 0.95) AS p95, quantile_cont(ms, 0.99) AS p99, NULL::UBIGINT AS h
FROM s GROUP BY key, measure
UNION ALL
SELECT 2, bucket, key, measure, count(*), quantile_cont(ms, 0.5), quantile_cont(ms, 0.95), quantile_cont(ms, 0.99),
       NULL
FROM s GROUP BY bucket, key, measure
UNION ALL
SELECT 3, NULL, key, measure, NULL, ms, NULL, NULL, h
FROM (SELECT key, measure, ms, hash(measure, key, ms, bucket) AS h FROM s ORDER BY h LIMIT __MAX_SAMPLES__)
UNION ALL
SELECT 4, NULL, NULL, NULL, count(*), NULL, NULL, NULL, NULL FROM s WHERE measure = 'delivery' AND ms < 0
"""
_QUERIES = [
    _FIGURES.replace("__SAMPLES__", samples).replace("__MAX_SAMPLES__", str(MAX_SAMPLES))
    for samples in (_DELIVERY_SAMPLES, _END_TO_END_SAMPLES)
]


def _order(bucket, key, measure) -> tuple:
    """SQL's ascending order with NULLs last."""
    return (bucket is None, bucket or 0, key is None, key or "", measure)


def _fetch(cursor: Reader, sql: str, values: dict) -> list[tuple]:
    return cursor.execute(sql, bind(sql, values)).fetchall()


def _row(row: tuple, with_bucket: bool) -> dict:
    head = {"t_ns": int(row[0])} if with_bucket else {}
    key, measure, count, p50, p95, p99 = row[1:] if with_bucket else row
    return {**head, "key": key, "measure": measure, "count": count, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def latency(cursor: Reader, filters: Filters, bucket_s: int = 10, by: str = "channel") -> dict:
    """Percentiles per key and measure, the same per time bucket, the negative delivery count, samples."""
    values = {**filters.values(), "by": by, "bucket_ns": bucket_s * 1_000_000_000}
    parts: dict[int, list[tuple]] = {1: [], 2: [], 3: [], 4: []}
    for sql in _QUERIES:
        for part, *row in _fetch(cursor, sql, values):
            parts[part].append(tuple(row))
    summary = sorted(parts[1], key=lambda r: _order(None, r[1], r[2]))
    buckets = sorted(parts[2], key=lambda r: _order(*r[:3]))
    samples = sorted(parts[3], key=lambda r: r[-1])[:MAX_SAMPLES]
    return {
        "summary": [_row(r[1:-1], False) for r in summary],
        "buckets": [_row(r[:-1], True) for r in buckets],
        "negative_delivery": sum(r[3] for r in parts[4]),
        "samples": [{"measure": m, "key": k, "ms": ms} for _, k, m, _, ms, _, _, _ in samples],
    }


# Deliveries that started before their event was published: the two services' clocks disagree.
_CLOCK_SKEW = f"""
WITH negative AS MATERIALIZED (
    SELECT event_id, "group", channel, service, producer_service, trace_id, span_id, t,
           (t - producer_t) / 1e6 AS ms
    FROM ({DELIVERIES}) WHERE producer_t IS NOT NULL AND t < producer_t
)
SELECT 0 AS part, producer_service, service, count(*), min(ms), quantile_cont(ms, 0.5), NULL, NULL, NULL, NULL
FROM negative GROUP BY producer_service, service
UNION ALL
SELECT * FROM (
    SELECT 1, producer_service, service, NULL, ms, NULL, event_id, "group", channel, trace_id
    FROM negative ORDER BY ms, span_id LIMIT $limit
)
"""


def clock_skew(cursor: Reader, filters: Filters, limit: int) -> dict:
    """Negative delivery times per (producer service, consumer service), and the deliveries, most negative first.

    The figures are raw: how far the consumer's clock is behind the producer's is at least -min_ms.
    """
    rows = cursor.execute(_CLOCK_SKEW, bind(_CLOCK_SKEW, {**filters.values(), "limit": limit})).fetchall()
    pairs = sorted((r for r in rows if r[0] == 0), key=lambda r: (r[4], r[1] or "", r[2] or ""))
    deliveries = sorted((r for r in rows if r[0] == 1), key=lambda r: (r[4], r[9]))
    return {
        "count": sum(r[3] for r in pairs),
        "pairs": [
            {"producer_service": p, "consumer_service": c, "count": n, "min_ms": low, "p50_ms": mid}
            for _, p, c, n, low, mid, *_ in pairs
        ],
        "deliveries": [
            {
                "event_id": event_id,
                "group": group,
                "channel": channel,
                "producer_service": p,
                "consumer_service": c,
                "delivery_ms": ms,
                "trace_id": trace_id,
            }
            for _, p, c, _, ms, _, event_id, group, channel, trace_id in deliveries
        ],
    }
