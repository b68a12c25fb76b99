"""Contract checks' cost: a ``/api/v1/contracts`` answer beside the Overview's over the same store.

Run with ``python -m bench.contracts [--events N]``. It builds an in-memory store with the real schema: N
events of one type (two schema versions, every payload distinct, one in 500 breaking its schema) on 8
channels, each with a PRODUCER span and delivered to 3 consumer groups. Then it times, alternating in
the same run, the overview (the baseline: what the Overview page asks on each refresh), the contracts
answer reading the default newest 200 payloads per channel, type and version, the observed flow alone
(no payloads), and the contracts answer validating every payload; and prints each beside the baseline
as a ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from collectors.analyses import overview
from collectors.analyses.filters import Filters
from collectors.contracts import findings, observed, registry
from collectors.storage.store import SCHEMA

EVENTS = 50_000
GROUPS = 3
ROUNDS = 5
BROKEN_EVERY = 500
QTY = {"type": "integer", "minimum": 1}
SCHEMA_V1 = {"type": "object", "required": ["order_id", "qty"], "properties": {"qty": QTY}}
SCHEMA_V2 = {**SCHEMA_V1, "required": ["order_id", "qty", "currency"]}
DECLARATIONS = {"consumers": {f"group{g}": {"accepts": {"bench.order": [1, 2]}} for g in range(GROUPS)}}

_BUS = """
INSERT INTO bus_messages BY NAME
SELECT 1e9::BIGINT + i * 1000 AS ArrivalNs, i AS ArrivalSeq, 'ch' || (i % 8) AS Channel, '*' AS Pattern,
       200 AS Size, true AS Valid, 'e' || i AS EventId, '/bench/' || (i % 2) AS Source, 'bench.order' AS Type,
       i // 16 + 1 AS Sequence, 'p' || (i % 2) AS PartitionKey, 'event' AS Kind,
       json_object('specversion', '1.0', 'id', 'e' || i, 'source', '/bench/' || (i % 2), 'type', 'bench.order',
                   'dataschema', 'urn:bench:bench.order:' || (1 + i % 2),
                   'data', json_object('order_id', 'o' || i, 'qty', CASE WHEN i % $broken = 0 THEN 0 ELSE 1 + i % 7 END,
                                       'currency', 'EUR'))::VARCHAR AS Payload
FROM range($events) t(i)
"""
_SPANS = """
INSERT INTO otel_traces BY NAME
SELECT b.ArrivalNs + k * 1000 AS Timestamp, lpad(printf('%x', b.ArrivalSeq), 32, '0') AS TraceId,
       lpad(printf('%x', b.ArrivalSeq * 8 + k), 16, '0') AS SpanId, '' AS ParentSpanId, '' AS TraceState,
       CASE WHEN k = 0 THEN 'send ' ELSE 'process ' END || b.Channel AS SpanName,
       CASE WHEN k = 0 THEN 'Producer' ELSE 'Consumer' END AS SpanKind,
       CASE WHEN k = 0 THEN 'orders' ELSE 'group' || (k - 1) END AS ServiceName, '{}' AS ResourceAttributes,
       '' AS ScopeName, '' AS ScopeVersion, '{}' AS SpanAttributes, 1000000 AS Duration, 'Unset' AS StatusCode,
       '' AS StatusMessage, '[]' AS Events, '[]' AS Links, 'redis' AS MsgSystem,
       CASE WHEN k = 0 THEN 'send' ELSE 'process' END AS MsgOperation, b.Channel AS MsgDestination,
       b.EventId AS MsgMessageId, CASE WHEN k > 0 THEN 'group' || (k - 1) END AS MsgConsumerGroup,
       b.Source AS CeSource, b.Type AS CeType, b.Sequence AS Sequence, b.PartitionKey AS PartitionKey,
       CASE WHEN k > 0 THEN 'processed' END AS Outcome, 1 + b.ArrivalSeq % 2 AS SchemaVersion
FROM bus_messages b, range($spans) t(k)
"""


def build(events: int) -> duckdb.DuckDBPyConnection:
    """An in-memory store: ``events`` events, each with a producer span and a delivery to every group."""
    conn = duckdb.connect()
    conn.execute(SCHEMA)
    conn.execute(_BUS, {"events": events, "broken": BROKEN_EVERY})
    conn.execute(_SPANS, {"spans": GROUPS + 1})
    return conn


def write_registry(root: Path) -> registry.Registry:
    for version, schema in ((1, SCHEMA_V1), (2, SCHEMA_V2)):
        (root / f"bench.order.v{version}.json").write_text(json.dumps(schema))
    (root / registry.DECLARATIONS_FILE).write_text(json.dumps(DECLARATIONS))
    return registry.load(root)


def main(events: int = EVENTS) -> dict:
    """Build the data, time each answer in turn ROUNDS times, print and return the medians and ratios."""
    conn = build(events)
    loaded = write_registry(Path(tempfile.mkdtemp(prefix="eventscope-bench-registry-")))
    answers = {
        "overview (baseline)": lambda: overview.overview(conn.cursor(), Filters(), 5.0),
        "contracts, newest 200": lambda: findings.report(loaded, observed.observed(conn.cursor(), Filters()), "r"),
        "observed, no payloads": lambda: observed.observed(conn.cursor(), Filters(), 0),
        "contracts, every payload": lambda: findings.report(
            loaded, observed.observed(conn.cursor(), Filters(), observed.MAX_PAYLOADS), "r"
        ),
    }
    timings: dict[str, list[float]] = {name: [] for name in answers}
    last: dict[str, object] = {}
    for _ in range(ROUNDS):  # alternating, so a noisy moment on a shared machine hits every figure alike
        for name, answer in answers.items():
            start = time.perf_counter()
            last[name] = answer()
            timings[name].append(time.perf_counter() - start)
    base = statistics.median(timings["overview (baseline)"])
    figures = {name: round(statistics.median(t), 3) for name, t in timings.items()}
    every = last["contracts, every payload"]
    print(f"contracts: {events:,} events, {events * GROUPS:,} deliveries, median of {ROUNDS} alternating rounds")
    for name, seconds in figures.items():
        print(f"  {name:<26} {seconds:8.3f} s   {seconds / base:5.2f}x the overview")
    broken = sum(f["count"] for f in every["findings"] if f["kind"] == findings.SCHEMA_VIOLATION)
    print(f"  every payload validated: {every['observed']['messages_checked']:,}; violations counted {broken:,} "
          f"of {len(range(0, events, BROKEN_EVERY)):,} planted")  # fmt: skip
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.contracts", description=__doc__)
    parser.add_argument("--events", type=int, default=EVENTS, help=f"events on the bus ({EVENTS:,})")
    main(parser.parse_args().events)
