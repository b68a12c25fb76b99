"""What keeping the pairing and the flows costs per commit, on DuckDB and on chdb, DuckDB being the baseline.

The writer keeps ``paired_deliveries``, ``trace_flows`` and ``flow_ends`` up to date with every commit
(collectors/storage/pairing.py, flows.py; on chdb collectors/storage/clickhouse/state.py): a commit notes what it
stored, and the next reader waits for the noted rows to be recomputed. Here a store per engine holding ``--size``
spans (bench.page_render's builder) takes ``--commits`` commits of ``--events`` new events each (bench.page_render's
events: three spans, one consumer in a trace of its own linked to the producer, and a bus message), each followed
by a reader, as the API asks one after new spans: the figures are the median seconds a commit took and the median
seconds the reader waited for the kept rows.
Run: ``python -m bench.kept_state [--size 300000] [--events 100] [--commits 5]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time

from bench.page_render import build_store, event_rows
from collectors.storage import spec
from collectors.storage.store import Store

ENGINES = ("duckdb", "chdb")
BASELINE = "duckdb"
SIZE = 300_000
EVENTS = 100
COMMITS = 5


def _open(engine: str, path: str) -> Store:
    return spec.open_store(spec.parse(f"{engine}:{path}"), queue_limit=256)


def commit_and_read(store: Store, first: int, events: int) -> tuple[float, float]:
    """Seconds to commit ``events`` new events (from index ``first``), then seconds until a reader is handed out."""
    spans, bus = [], []
    for index in range(first, first + events):
        event_spans, message = event_rows(index, time.time_ns())
        spans += event_spans
        bus.append(message)
    started = time.perf_counter()
    store.write("otel_traces", spans, timeout=600)
    store.write("bus_messages", bus, timeout=600)
    committed = time.perf_counter()
    store.reader().close()
    return committed - started, time.perf_counter() - committed


def measure(engine: str, workdir: str, size: int, events: int, commits: int) -> tuple[float, float]:
    """Median commit and reader-wait seconds on ``engine`` over a store of ``size`` spans."""
    path = f"{workdir}/store.{engine}"
    build_store(path, size, lambda location: _open(engine, location))
    store = _open(engine, path)
    try:
        store.reader().close()  # whatever the build left noted
        first = size // 3
        times = [commit_and_read(store, first + i * events, events) for i in range(commits)]
    finally:
        store.close()
    return statistics.median(t for t, _ in times), statistics.median(w for _, w in times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kept_state", description=__doc__)
    parser.add_argument("--size", type=int, default=SIZE, help="spans in the store before the commits")
    parser.add_argument("--events", type=int, default=EVENTS, help="new events per commit (three spans each)")
    parser.add_argument("--commits", type=int, default=COMMITS, help="commits measured (median reported)")
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="eventscope-kept-")
    try:
        results = {engine: measure(engine, workdir, args.size, args.events, args.commits) for engine in ENGINES}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{args.size:,} spans, commits of {args.events} events ({3 * args.events} spans), median of {args.commits}")
    print(f"  {'engine':<8} {'commit':>10} {'reader waits':>14}  reader / {BASELINE}'s")
    for engine, (commit, wait) in results.items():
        ratio = wait / results[BASELINE][1]
        print(f"  {engine:<8} {commit:>8.3f} s {wait:>12.3f} s  {ratio:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
