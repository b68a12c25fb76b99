"""The store engines side by side: ingest and every analysis endpoint's answer time on DuckDB and on chdb (ClickHouse
in-process), in one run, DuckDB being the baseline each chdb figure is divided by.

Ingest: the same OTLP/HTTP payloads as bench.ingest, posted to a collectors process on each engine, as spans per
collectors CPU-second. Answers: a store per engine and size, written through the same ``Store`` with the same rows
(bench.page_render's event builder: a publish, a delivery and a processing span per event, and a bus message), each
served by a real collectors process and asked every endpoint of bench.api_latency with no filters, engines
alternating endpoint by endpoint so that load from other processes falls on both alike. Run:
``python -m bench.store_engines [--sizes 1000000,10000000] [--ingest-spans N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time

from bench.api_latency import ENDPOINTS, answer_seconds
from bench.ingest import SPANS_PER_BATCH as INGEST_BATCH
from bench.ingest import CollectorsProcess, payloads, post_all
from bench.page_render import build_store
from collectors.storage import spec
from collectors.storage.recall import RECALL_S
from devtools.processes import Collectors

ENGINES = ("duckdb", "chdb")
BASELINE = "duckdb"
SIZES = (1_000_000, 10_000_000)
INGEST_SPANS = 200_000
ROUNDS = 3


def build(engine: str, location: str, spans: int) -> float:
    """A store of ``spans`` spans (three per event, a bus message each) on ``engine``; seconds it took to write."""
    started = time.perf_counter()
    build_store(location, spans, lambda path: spec.open_store(spec.parse(f"{engine}:{path}"), queue_limit=256))
    return time.perf_counter() - started


def ingest_rates(spans: int) -> dict[str, float]:
    """Spans per collectors CPU-second over OTLP/HTTP, per engine (each on a fresh store)."""
    bodies = payloads(spans)
    rates = {}
    for engine in ENGINES:
        collectors = CollectorsProcess(engine=engine)
        try:
            _, cpu = post_all(collectors, bodies)
            stored = collectors.health()["store"]["spans"]
        finally:
            collectors.stop()
        if stored != len(bodies) * INGEST_BATCH:
            raise RuntimeError(f"{engine}: stored {stored} spans of {len(bodies) * INGEST_BATCH}")
        rates[engine] = stored / cpu
    return rates


def answer_times(apis: dict[str, str], rounds: int) -> dict[str, dict[str, float]]:
    """Median answer seconds per engine and endpoint, after one warm-up request each."""
    times: dict[str, dict[str, list[float]]] = {engine: {e: [] for e in ENDPOINTS} for engine in apis}
    for endpoint in ENDPOINTS:
        for api in apis.values():
            answer_seconds(api, endpoint)
        for _ in range(rounds):
            for engine, api in apis.items():
                time.sleep(RECALL_S)  # no answer reuses the rows of the one before
                times[engine][endpoint].append(answer_seconds(api, endpoint))
    return {engine: {e: statistics.median(v) for e, v in by.items()} for engine, by in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_engines", description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="store sizes in spans, comma-separated")
    parser.add_argument("--ingest-spans", type=int, default=INGEST_SPANS, help="spans posted per engine")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="requests per endpoint (median reported)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size]
    rates = ingest_rates(args.ingest_spans)
    print(f"OTLP/HTTP ingest, {args.ingest_spans:,} spans, per collectors CPU-second")
    for engine in ENGINES:
        print(f"  {engine:<8} {rates[engine]:>12,.0f} spans/s  {rates[engine] / rates[BASELINE]:6.2f} x {BASELINE}")
    for size in sizes:
        workdir = tempfile.mkdtemp(prefix="eventscope-engines-")
        processes: dict[str, Collectors] = {}
        try:
            written = {engine: build(engine, f"{workdir}/store.{engine}", size) for engine in ENGINES}
            for engine in ENGINES:
                processes[engine] = Collectors(None, store=f"{engine}:{workdir}/store.{engine}")
            results = answer_times({engine: p.api for engine, p in processes.items()}, args.rounds)
        finally:
            for process in processes.values():
                process.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"\n{size:,} spans: written through Store in " + ", ".join(f"{e} {s:.1f} s" for e, s in written.items()))
        print(f"  {'endpoint':<16} " + " ".join(f"{engine:>10}" for engine in ENGINES) + f"  chdb / {BASELINE}")
        for endpoint in ENDPOINTS:
            row = results
            ratio = row["chdb"][endpoint] / row[BASELINE][endpoint]
            cells = " ".join(f"{row[engine][endpoint]:>8.3f} s" for engine in ENGINES)
            print(f"  {endpoint.split('?', 1)[0]:<16} {cells}  {ratio:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
