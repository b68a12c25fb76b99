"""Slow consumers: a consumer group that falls behind while its peers keep up (docs/analyses.md).

Pub/Sub keeps no backlog a client can see: a slow subscriber's messages wait in its socket buffers
and in Redis's output buffer for it, and the only trace in the telemetry is that its deliveries
start later and later after their publication. The SQL takes the median delivery latency per
(group, publish-time bucket); ``episodes`` finds the runs of buckets in which a group stays far
behind the other groups, in plain Python so the definition reads as it is documented.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable

from collectors.analyses.deliveries import DELIVERIES
from collectors.analyses.filters import Filters, bind
from collectors.storage.reader import Reader

DEFAULT_BUCKET_S = 1
DEFAULT_MIN_MS = 200.0
DEFAULT_FACTOR = 4.0
DEFAULT_MIN_BUCKETS = 2

_BUCKETS = f"""
SELECT "group", (producer_t // $bucket_ns) * $bucket_ns AS bucket, count(*) AS n,
       quantile_cont((t - producer_t) / 1e6, 0.5) AS p50, max((t - producer_t) / 1e6) AS max_ms,
       list(DISTINCT channel ORDER BY channel) AS channels
FROM ({DELIVERIES}) WHERE producer_t IS NOT NULL
GROUP BY ALL
"""

Bucket = tuple[str, int, int, float, float, list[str]]
"""(group, bucket start ns, deliveries, median delivery ms, highest delivery ms, channels)."""


def _peer_median(medians: dict[str, float], group: str) -> float:
    """The median of the other groups' medians in one bucket (0 when the group is alone)."""
    others = [ms for g, ms in medians.items() if g != group]
    return max(statistics.median(others), 0.0) if others else 0.0


def _behind(bucket_rows: Iterable[Bucket], min_ms: float, factor: float) -> dict[str, list[tuple[Bucket, float]]]:
    """Per group, its buckets in which it was behind, each with its peers' median."""
    by_bucket: dict[int, dict[str, Bucket]] = defaultdict(dict)
    for row in bucket_rows:
        by_bucket[row[1]][row[0]] = row
    behind: dict[str, list[tuple[Bucket, float]]] = defaultdict(list)
    for bucket in sorted(by_bucket):
        medians = {g: row[3] for g, row in by_bucket[bucket].items()}
        for group, row in by_bucket[bucket].items():
            peers = _peer_median(medians, group)
            if row[3] >= max(min_ms, factor * peers) and peers < min_ms:
                behind[group].append((row, peers))
    return behind


def _runs(buckets: list[tuple[Bucket, float]], bucket_ns: int) -> list[list[tuple[Bucket, float]]]:
    """Consecutive buckets split into runs (a bucket without being behind ends a run)."""
    runs: list[list[tuple[Bucket, float]]] = []
    for entry in buckets:
        if runs and entry[0][1] - runs[-1][-1][0][1] == bucket_ns:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


def _episode(run: list[tuple[Bucket, float]], bucket_ns: int) -> dict:
    peak_row, peak_peers = max(run, key=lambda entry: entry[0][3])
    return {
        "group": run[0][0][0],
        "start_ns": run[0][0][1],
        "end_ns": run[-1][0][1] + bucket_ns,
        "buckets": len(run),
        "deliveries": sum(row[2] for row, _ in run),
        "first_p50_ms": run[0][0][3],
        "peak_p50_ms": peak_row[3],
        "peers_p50_ms": peak_peers,
        "max_ms": max(row[4] for row, _ in run),
        "channels": sorted({c for row, _ in run for c in row[5]}),
    }


def episodes(
    bucket_rows: Iterable[Bucket],
    bucket_ns: int,
    min_ms: float = DEFAULT_MIN_MS,
    factor: float = DEFAULT_FACTOR,
    min_buckets: int = DEFAULT_MIN_BUCKETS,
) -> list[dict]:
    """Every run of at least ``min_buckets`` consecutive buckets in which a group was behind its peers.

    Behind: the group's median delivery latency of the events published in the bucket is at least
    ``min_ms`` and at least ``factor`` times the median of the other groups' medians in that bucket,
    while those peers keep up (their median is below ``min_ms``): when everyone lags, the cause is
    shared (the machine, the broker), not one consumer.
    """
    found = []
    for buckets in _behind(bucket_rows, min_ms, factor).values():
        found += [_episode(run, bucket_ns) for run in _runs(buckets, bucket_ns) if len(run) >= min_buckets]
    return sorted(found, key=lambda e: (e["start_ns"], e["group"]))


def slow_consumers(
    cursor,
    filters: Filters,
    bucket_s: int = DEFAULT_BUCKET_S,
    min_ms: float = DEFAULT_MIN_MS,
    factor: float = DEFAULT_FACTOR,
    min_buckets: int = DEFAULT_MIN_BUCKETS,
) -> dict:
    """The slow-consumer episodes in the filtered deliveries, with the definition's parameters.

    The group filter picks which groups' episodes are listed; every group stays a peer.
    """
    bucket_ns = bucket_s * 1_000_000_000
    values = {**filters.values(), "group": None, "bucket_ns": bucket_ns}
    rows = [(g, int(b), int(n), float(p50), float(top), list(ch)) for g, b, n, p50, top, ch in _fetch(cursor, values)]
    found = episodes(rows, bucket_ns, min_ms, factor, min_buckets)
    return {
        "bucket_s": bucket_s,
        "min_ms": min_ms,
        "factor": factor,
        "min_buckets": min_buckets,
        "slow": [e for e in found if filters.group in (None, e["group"])],
    }


def _fetch(cursor: Reader, values: dict) -> list[tuple]:
    return cursor.execute(_BUCKETS, bind(_BUCKETS, values)).fetchall()
