"""Analysis speed: the full report over 1,000,000 deliveries, DuckDB SQL beside plain pandas.

Run with ``python -m bench.analysis [--events N]``. It builds an in-memory store with the real
schema: N events on 32 streams seen by the bus tap, each delivered to 4 consumer groups (so
4 x N deliveries), with drops, reorders and duplicates sprinkled in. Then it times
collectors.analyses.report over it and a straightforward pandas implementation of the same definitions
(docs/analyses.md) over the same rows, checks both agree, and prints both figures and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import duckdb
import pandas as pd

from collectors.analyses import report
from collectors.analyses.filters import Filters
from collectors.storage import pairing
from collectors.storage.store import SCHEMA

EVENTS = 250_000
GROUPS = 4
STREAMS = 32
ROUNDS = 5
NOW_NS = 10**18
GRACE_S = 5.0

_BUS = """
INSERT INTO bus_messages
SELECT 1e9::BIGINT + i * 1000 + (CASE WHEN i % 1009 = 0 THEN 50000 ELSE 0 END) + copy * 7, i * 2 + copy,
       'ch' || (i % 4), '*', 200, true, NULL, 'e' || i, '/src/' || (i // 4 % 2), 'bench.event', NULL, NULL,
       i // $streams + 1, 'p' || (i // 8 % 4), NULL, '{}', 'event'
FROM range($events) t(i), range(2) c(copy)
WHERE i % 997 <> 0 AND (copy = 0 OR i % 1013 = 0)
"""
_SPANS = """
INSERT INTO otel_traces
SELECT b.ArrivalNs + 200000 + g * 1000, lpad(printf('%x', b.ArrivalSeq), 32, '0'), lpad(printf('%x', g), 16, '0'),
       '', '', 'process ' || b.Channel, 'Consumer', 'svc' || g, '{}', '', '', '{}', 1000000, 'Unset', '', '[]', '[]',
       'redis', 'process', b.Channel, b.EventId, 'group' || g, b.Source, b.Type, b.Sequence, b.PartitionKey,
       CASE WHEN b.ArrivalSeq % 2 = 1 AND g % 2 = 0 THEN 'duplicate_skipped' ELSE 'processed' END,
       NULL, 1, NULL, 1, NULL, NULL, 1, NULL
FROM bus_messages b, range($groups) t(g)
"""


def build(events: int) -> duckdb.DuckDBPyConnection:
    """An in-memory store holding ``events`` events on the bus and their deliveries to every group."""
    conn = duckdb.connect()
    conn.execute(SCHEMA)
    conn.execute(_BUS, {"events": events, "streams": STREAMS})
    conn.execute(_SPANS, {"groups": GROUPS})
    pairing.rebuild(conn)
    return conn


def _observations(conn) -> pd.DataFrame:
    bus = conn.execute(
        "SELECT 'bus' AS vantage, Channel AS channel, Source AS source, PartitionKey AS pk, EventId AS event_id,"
        " Sequence AS seq, ArrivalNs AS t, ArrivalSeq AS tie, NULL AS outcome FROM bus_messages WHERE Valid"
    ).df()
    spans = conn.execute(
        "SELECT MsgConsumerGroup AS vantage, MsgDestination AS channel, CeSource AS source, PartitionKey AS pk,"
        " MsgMessageId AS event_id, Sequence AS seq, Timestamp AS t, SpanId AS tie, Outcome AS outcome"
        " FROM otel_traces WHERE SpanKind = 'Consumer'"
    ).df()
    return bus, spans


def pandas_report(frame: pd.DataFrame, now_ns: int, grace_s: float) -> pd.DataFrame:
    """The same per-stream counts as collectors.analyses.report, written plainly with pandas."""
    key = ["vantage", "channel", "source", "pk"]
    frame = frame.sort_values(key + ["t", "tie"], kind="stable")
    frame["copy"] = frame.groupby(key + ["event_id"], dropna=False).cumcount()
    firsts = frame[(frame["copy"] == 0) & frame["seq"].notna()].copy()
    firsts["highest_before"] = firsts.groupby(key, dropna=False)["seq"].transform(lambda s: s.cummax().shift())
    seqs = firsts.groupby(key + ["seq"], dropna=False)["t"].min().reset_index().sort_values(key + ["seq"])
    seqs["next_seq"] = seqs.groupby(key, dropna=False)["seq"].shift(-1)
    seqs["next_t"] = seqs.groupby(key, dropna=False)["t"].shift(-1)
    gaps = seqs[seqs["next_seq"] - seqs["seq"] > 1].copy()
    gaps["size"] = gaps["next_seq"] - gaps["seq"] - 1
    gaps["lost"] = gaps["size"].where(gaps["next_t"] < now_ns - int(grace_s * 1e9), 0)
    processed = frame[frame["outcome"] == "processed"].groupby(key + ["event_id"], dropna=False).size()
    result = frame.groupby(key, dropna=False).agg(
        received=("t", "size"),
        duplicates=("copy", lambda c: int((c > 0).sum())),
        handled=("outcome", lambda o: int((o == "duplicate_skipped").sum())),
    )
    result["out_of_order"] = (
        (firsts["seq"] < firsts["highest_before"]).groupby([firsts[k] for k in key], dropna=False).sum()
    )
    result["missing"] = gaps.groupby(key, dropna=False)["size"].sum()
    result["lost"] = gaps.groupby(key, dropna=False)["lost"].sum()
    result["processed_twice"] = (processed[processed > 1] - 1).groupby(level=key, dropna=False).sum()
    return result.fillna(0).astype(int)


def _time(fn) -> tuple[float, float, float, object]:
    """Best and median wall time over ROUNDS runs (the machine may be shared: the best is the
    least disturbed run), the median CPU time of this process (all threads), and the last result."""
    timings, cpu, result = [], [], None
    for _ in range(ROUNDS):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        timings.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(timings), statistics.median(timings), statistics.median(cpu), result


def _agree(sql: list[dict], frame: pd.DataFrame) -> bool:
    totals = {k: sum(s[k] for s in sql) for k in ("received", "duplicates", "out_of_order", "missing", "lost")}
    return totals == {k: int(frame[k].sum()) for k in totals}


def main(events: int = EVENTS) -> dict:
    """Build the data, time both implementations, print and return the figures."""
    conn = build(events)
    (deliveries,) = conn.execute("SELECT count(*) FROM otel_traces").fetchone()
    sql_s, sql_median, sql_cpu, sql_result = _time(lambda: report.report(conn, Filters(), GRACE_S, NOW_NS))
    bus, spans = _observations(conn)

    def pandas_full():
        return pd.concat([pandas_report(bus, NOW_NS, GRACE_S), pandas_report(spans, NOW_NS, GRACE_S)])

    pandas_s, pandas_median, pandas_cpu, pandas_result = _time(pandas_full)
    figures = {
        "deliveries": deliveries,
        "bus_messages": len(bus),
        "streams": len(sql_result["streams"]),
        "duckdb_s": round(sql_s, 3),
        "pandas_s": round(pandas_s, 3),
        "speedup": round(pandas_s / sql_s, 1),
        "duckdb_median_s": round(sql_median, 3),
        "pandas_median_s": round(pandas_median, 3),
        "duckdb_cpu_s": round(sql_cpu, 3),
        "pandas_cpu_s": round(pandas_cpu, 3),
        "agree": _agree(sql_result["streams"], pandas_result),
    }
    print(
        f"analysis: full report over {deliveries:,} deliveries + {len(bus):,} bus messages "
        f"({figures['streams']} stream entries), best of {ROUNDS}: DuckDB {sql_s:.3f} s, pandas {pandas_s:.3f} s "
        f"(rows already in memory), {figures['speedup']}x faster (medians {sql_median:.3f} s, "
        f"{pandas_median:.3f} s; CPU {sql_cpu:.3f} s, {pandas_cpu:.3f} s); goal < 1 s and >= 3x; "
        f"results agree: {figures['agree']}"
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.analysis", description=__doc__)
    parser.add_argument("--events", type=int, default=EVENTS, help=f"events on the bus ({EVENTS:,})")
    main(parser.parse_args().events)
