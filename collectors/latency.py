"""Latency: delivery, processing and end to end, as p50/p95/p99 per key and per time bucket.

- delivery: producer span start to consumer span start (raw clocks; negative values are kept and
  counted, never corrected, because they reveal clock skew);
- processing: the consumer span's duration;
- end to end: per causal flow (traces joined by span links, docs/analyses.md), the first producer
  start to the last consumer end.
"""

from __future__ import annotations

from collectors.deliveries import DELIVERIES
from collectors.filters import Filters, bind

BY = ("channel", "group", "type")
MAX_SAMPLES = 5000
"""Raw samples returned for histograms, drawn reproducibly from all measures."""

# Traces joined by a span link in either direction form one flow, named by its smallest trace id.
FLOWS = """
WITH RECURSIVE edges AS (
    SELECT DISTINCT TraceId AS a, LinkedTraceId AS b FROM span_links WHERE TraceId <> LinkedTraceId
    UNION SELECT DISTINCT LinkedTraceId, TraceId FROM span_links WHERE TraceId <> LinkedTraceId
),
reach(trace_id, root) AS (
    SELECT DISTINCT TraceId, TraceId FROM otel_traces WHERE SpanKind IN ('Producer', 'Consumer')
    UNION
    SELECT e.b, r.root FROM reach r JOIN edges e ON e.a = r.trace_id
)
SELECT trace_id, min(root) AS flow FROM reach GROUP BY trace_id
"""

_SAMPLES = f"""
WITH d AS ({DELIVERIES}),
flows AS ({FLOWS}),
flow_spans AS (
    SELECT f.flow, s.Timestamp, s.Duration, s.SpanKind, s.MsgDestination, s.CeType,
           COALESCE(s.MsgConsumerGroup, s.ServiceName) AS grp
    FROM otel_traces s JOIN flows f ON f.trace_id = s.TraceId
    WHERE s.SpanKind IN ('Producer', 'Consumer')
),
e2e AS (
    SELECT flow, min(Timestamp) FILTER (SpanKind = 'Producer') AS start,
           max(Timestamp + Duration) FILTER (SpanKind = 'Consumer') AS finish,
           arg_min(MsgDestination, Timestamp) FILTER (SpanKind = 'Producer') AS channel,
           arg_min(CeType, Timestamp) FILTER (SpanKind = 'Producer') AS type,
           arg_max(grp, Timestamp + Duration) FILTER (SpanKind = 'Consumer') AS grp
    FROM flow_spans GROUP BY flow
)
SELECT 'delivery' AS measure, t, channel, "group", type, (t - producer_t) / 1e6 AS ms
FROM d WHERE producer_t IS NOT NULL
UNION ALL
SELECT 'processing', t, channel, "group", type, duration / 1e6 FROM d
UNION ALL
SELECT 'end_to_end', start, channel, grp, type, (finish - start) / 1e6
FROM e2e WHERE start IS NOT NULL AND finish IS NOT NULL
  AND ($since_ns IS NULL OR start >= $since_ns) AND ($until_ns IS NULL OR start < $until_ns)
  AND ($channel IS NULL OR channel = $channel) AND ($group IS NULL OR grp = $group)
  AND ($type IS NULL OR type = $type)
"""

_SUMMARY = f"""
WITH samples AS ({_SAMPLES})
SELECT CASE $by WHEN 'channel' THEN channel WHEN 'group' THEN "group" ELSE type END AS key, measure,
       (t // $bucket_ns) * $bucket_ns AS bucket, ms
FROM samples
"""


_PERCENTILES = """
WITH s AS (__SUMMARY__)
SELECT __BUCKET__ key, measure, count(*), quantile_cont(ms, 0.5), quantile_cont(ms, 0.95), quantile_cont(ms, 0.99)
FROM s GROUP BY ALL ORDER BY ALL
"""
_BY_KEY = _PERCENTILES.replace("__SUMMARY__", _SUMMARY).replace("__BUCKET__", "")
_BY_BUCKET = _PERCENTILES.replace("__SUMMARY__", _SUMMARY).replace("__BUCKET__", "bucket,")
_SAMPLES_SQL = f"""
WITH s AS ({_SUMMARY})
SELECT measure, key, ms FROM s ORDER BY hash(measure, key, ms, bucket) LIMIT {MAX_SAMPLES}
"""
_NEGATIVE = f"SELECT count(*) FROM ({_SAMPLES}) WHERE measure = 'delivery' AND ms < 0"


def _fetch(cursor, sql: str, values: dict) -> list[tuple]:
    return cursor.execute(sql, bind(sql, values)).fetchall()


def _row(row: tuple, with_bucket: bool) -> dict:
    head = {"t_ns": int(row[0])} if with_bucket else {}
    key, measure, count, p50, p95, p99 = row[1:] if with_bucket else row
    return {**head, "key": key, "measure": measure, "count": count, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def latency(cursor, filters: Filters, bucket_s: int = 10, by: str = "channel") -> dict:
    """Percentiles per key and measure, the same per time bucket, the negative delivery count, samples."""
    values = {**filters.values(), "by": by, "bucket_ns": bucket_s * 1_000_000_000}
    summary = [_row(r, False) for r in _fetch(cursor, _BY_KEY, values)]
    buckets = [_row(r, True) for r in _fetch(cursor, _BY_BUCKET, values)]
    samples = _fetch(cursor, _SAMPLES_SQL, values)
    ((negative,),) = _fetch(cursor, _NEGATIVE, values)
    return {
        "summary": summary,
        "buckets": buckets,
        "negative_delivery": negative,
        "samples": [{"measure": m, "key": k, "ms": ms} for m, k, ms in samples],
    }
