"""The report: per stream and vantage point, received, duplicates, redeliveries, out of order, missing, gaps, lost.

Counted in DuckDB with window functions, so the report over a million deliveries takes well under
a second. collectors/analyses/streams.py holds the same definitions in plain Python as the reference the
SQL is tested against (tests/unit/test_analysis_streams.py).
"""

from __future__ import annotations

import re
import time

from collectors.analyses import observations
from collectors.analyses.filters import Filters, bind
from collectors.ingest.conventions import Outcome
from collectors.storage.reader import Reader

DEFAULT_GRACE_S = 5.0
"""A gap becomes lost once its newer neighbour arrived more than this many seconds ago."""

_COUNTS = f"""
WITH obs AS MATERIALIZED (
    SELECT __STREAM_KEY__ AS sk, t::HUGEINT * 18446744073709551616 + COALESCE(tie, 0) AS k,
           vantage, channel, source, pk, event_id, seq, t, outcome, redelivered
    FROM (__OBSERVATIONS__)
),
-- every sighting after a message's first failed or retried one is a redelivery (a join, not a window: few fail)
failed AS (SELECT sk, event_id, min(k) AS failed_k FROM obs WHERE outcome IN __FAILED_ATTEMPT__ GROUP BY ALL),
streams AS (SELECT sk, vantage, channel, source, pk FROM obs GROUP BY ALL),
ids AS (
    SELECT sk, event_id, count(*) AS n, arg_min_null(seq, k) AS seq, min(k) AS k, min(t) AS t,
           count(*) FILTER (outcome = '{Outcome.DUPLICATE_SKIPPED}') AS handled,
           count(*) FILTER (outcome = '{Outcome.PROCESSED}') AS processed,
           count(*) FILTER (COALESCE(redelivered, false) OR k > failed_k) AS redeliveries,
           arg_min(COALESCE(redelivered, false), k)::INTEGER AS first_redelivery
    FROM obs LEFT JOIN failed USING (sk, event_id) GROUP BY ALL
),
firsts AS (
    SELECT sk, seq, t, __RUNNING_MAX__ AS highest
    FROM ids WHERE seq IS NOT NULL
),
gaps AS (
    SELECT sk, seq + 1 AS low, next_seq - 1 AS high, next_t
    FROM (SELECT sk, seq, lead(seq) OVER w AS next_seq, lead(t) OVER w AS next_t
          FROM firsts WINDOW w AS (PARTITION BY sk ORDER BY seq, t))
    WHERE next_seq - seq > 1
),
c AS (
    SELECT sk, sum(n) AS received, sum(n - 1 - redeliveries + first_redelivery) AS duplicates,
           sum(redeliveries) AS redeliveries, sum(handled) AS handled,
           sum(greatest(processed - 1, 0)) AS processed_twice, COALESCE(bool_or(seq < 0), false) AS negative
    FROM ids GROUP BY ALL
),
late AS (SELECT sk, count(*) AS out_of_order FROM firsts WHERE seq < highest GROUP BY ALL),
g AS (
    SELECT sk, sum(high - low + 1) AS missing, list([low, high, next_t] ORDER BY low) AS gaps
    FROM gaps GROUP BY ALL
)
SELECT s.vantage, s.channel, s.source, s.pk, c.received, c.duplicates,
       COALESCE(late.out_of_order, 0) AS out_of_order, COALESCE(g.missing, 0) AS missing,
       COALESCE(g.gaps, []) AS gaps, c.handled, c.processed_twice, c.redeliveries,
       count(*) OVER (PARTITION BY sk) > 1 OR c.negative AS inexact
FROM streams s JOIN c USING (sk) LEFT JOIN late USING (sk) LEFT JOIN g USING (sk)
ORDER BY s.vantage, s.channel, s.source NULLS FIRST, s.pk NULLS FIRST
"""
# The fast variant keys streams by a 64-bit hash of (vantage, channel, source, pk), and takes the
# running maximum in one pass over all streams ordered by that hash, on seq shifted by hash * 2^63
# so that no stream's values reach into the next one's. A hash shared by two streams, or a negative
# sequence, shows in the answer (``inexact``) and the exact variant (a struct key, a running maximum
# per stream) answers instead.
_HASHED = {
    "__STREAM_KEY__": "hash(vantage, channel, source, pk)",
    "__RUNNING_MAX__": "max(sk::HUGEINT * 9223372036854775808 + seq) OVER (ORDER BY sk, k ROWS UNBOUNDED PRECEDING)"
    " - sk::HUGEINT * 9223372036854775808",
}
_EXACT = {
    "__STREAM_KEY__": "struct_pack(vantage, channel, source, pk)",
    "__RUNNING_MAX__": "max(seq) OVER (PARTITION BY sk ORDER BY k)",
}


def _variant(relation: str, placeholders: dict[str, str]) -> str:
    sql = _COUNTS.replace("__OBSERVATIONS__", relation).replace("__FAILED_ATTEMPT__", observations.FAILED_ATTEMPT)
    for placeholder, text in placeholders.items():
        sql = sql.replace(placeholder, text)
    return sql


_QUERIES = {
    exact: [_variant(relation, _EXACT if exact else _HASHED) for relation in (observations.BUS, observations.CONSUMERS)]
    for exact in (False, True)
}

COUNTED = "stream_counts"
"""The table of every stream's counts at every vantage point that the writer keeps as spans and bus messages arrive
(collectors/storage/stream_counts.py), by the definition ``STREAM_COUNTS``: an answer over the whole store reads it
instead of counting every sighting again."""
_UNFILTERED = {"since_ns": "BIGINT", "until_ns": "BIGINT", "channel": "VARCHAR", "group": "VARCHAR",
               "type": "VARCHAR", "service": "VARCHAR"}  # fmt: skip
_PARAMETER = re.compile(r"\$(" + "|".join(_UNFILTERED) + r")\b")


def _unfiltered(relation: str) -> str:
    """``relation`` with every common filter left out (each parameter a NULL of its type)."""
    return _PARAMETER.sub(lambda match: f"CAST(NULL AS {_UNFILTERED[match.group(1)]})", relation)


def kept_counts(channels: str | None = None) -> str:
    """SQL: the counts of every stream at every vantage point (``tap`` tells the bus tap from a consumer group of the
    same name), over the whole store; with ``channels`` (SQL selecting ``Channel``), of just the streams of those
    channels, which depend only on the sightings on those channels."""

    def scoped(relation: str) -> str:
        relation = _unfiltered(relation)
        return relation if channels is None else f"SELECT * FROM ({relation}) WHERE channel IN ({channels})"

    bus, consumers = (_variant(scoped(relation), _EXACT) for relation in (observations.BUS, observations.CONSUMERS))
    return f"SELECT true AS tap, * FROM ({bus})\nUNION ALL\nSELECT false AS tap, * FROM ({consumers})"


STREAM_COUNTS = kept_counts()
"""The definition of ``COUNTED`` (on ClickHouse, a view of the same definition)."""
_KEPT = f"""
SELECT vantage, channel, source, pk, received, duplicates, out_of_order, missing, gaps, handled, processed_twice,
       redeliveries, inexact
FROM {COUNTED}
WHERE ($channel IS NULL OR channel = $channel) AND ($group IS NULL OR (NOT tap AND vantage = $group))
ORDER BY tap DESC, vantage, channel, source NULLS FIRST, pk NULLS FIRST
"""
NOTED = "stream_counts_pending"
"""The channels stored or deleted since ``COUNTED`` was last brought up to date; there only while some are."""
# 1: the counts are kept and up to date
_IS_KEPT = f"""
SELECT COALESCE(sum(CASE WHEN table_name = '{COUNTED}' THEN 1 ELSE -1 END), 0) FROM information_schema.tables
WHERE table_name IN ('{COUNTED}', '{NOTED}')
"""
STATEMENTS = frozenset([*(sql for variant in _QUERIES.values() for sql in variant), _KEPT, _IS_KEPT])
"""The stream counts, which /report, /overview, /flow and /loss all run: one store state's rows serve them all
(collectors/storage/recall.py)."""
TOTALS = ("received", "duplicates", "redeliveries", "out_of_order", "missing", "lost")


def _entry(row: tuple, lost_before: int) -> dict:
    vantage, channel, source, pk, received, duplicates, late, missing, gaps, handled, twice, redeliveries = row[:12]
    # a gap is lost once its newer neighbour is older than the grace window: decided here, so that the statement
    # does not change with the clock and two answers in one store state share it (collectors/storage/recall.py)
    lost_gaps = [[low, high] for low, high, next_t in gaps if next_t is not None and next_t < lost_before]
    entry = {
        "vantage": vantage,
        "channel": channel,
        "source": source,
        "partitionkey": pk,
        "received": int(received),
        "duplicates": int(duplicates),
        "out_of_order": late,
        "missing": int(missing),
        "gaps": [[low, high] for low, high, _ in gaps],
        "lost": sum(high - low + 1 for low, high in lost_gaps),
        "lost_gaps": lost_gaps,
    }
    if vantage != observations.BUS_VANTAGE:
        entry["redeliveries"] = int(redeliveries)
        entry["duplicates_handled"] = int(handled)
        entry["duplicates_processed"] = int(twice)
    return entry


def streams(
    cursor: Reader, filters: Filters, grace_s: float = DEFAULT_GRACE_S, now_ns: int | None = None
) -> list[dict]:
    """One entry per stream and vantage point (bus first, then consumer groups)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    values = filters.values()
    lost_before = now_ns - int(grace_s * 1e9)
    if _kept(cursor, filters):
        return [_entry(row, lost_before) for row in cursor.execute(_KEPT, bind(_KEPT, values)).fetchall()]
    entries = []
    for hashed, exact in zip(_QUERIES[False], _QUERIES[True], strict=True):
        rows = cursor.execute(hashed, bind(hashed, values)).fetchall()
        if any(row[-1] for row in rows):
            rows = cursor.execute(exact, bind(exact, values)).fetchall()
        entries += [_entry(row, lost_before) for row in rows]
    return entries


def _kept(cursor: Reader, filters: Filters) -> bool:
    """Whether the answer can be read from the kept counts: no filter splits a stream (a window, a type or a
    service does; a channel or a group selects whole streams), and the store keeps them, up to date."""
    whole = filters.since_ns is None and filters.until_ns is None and filters.type is None and filters.service is None
    return whole and cursor.execute(_IS_KEPT).fetchone()[0] == 1


def report(
    cursor: Reader, filters: Filters | None = None, grace_s: float = DEFAULT_GRACE_S, now_ns: int | None = None
) -> dict:
    """Per-stream counts at every vantage point, plus totals, the malformed count and the span count."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    entries = streams(cursor, filters or Filters(), grace_s, now_ns)
    (malformed,) = cursor.execute("SELECT count(*) FROM bus_messages WHERE Kind = 'malformed'").fetchone()
    (spans,) = cursor.execute("SELECT count(*) FROM otel_traces").fetchone()
    return {
        "generated_at_ns": now_ns,
        "grace_s": grace_s,
        "streams": entries,
        "malformed": malformed,
        "spans": spans,
        "totals": {key: sum(s.get(key, 0) for s in entries) for key in TOTALS},
    }
