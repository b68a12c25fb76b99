"""Query API answer time: every analysis endpoint with 1,000,000 spans in the store, beside the same endpoint
with 1,000 spans (the baseline), measured in the same run.

The stores are built by bench.page_render's builder (rows written through collectors.storage.store.Store); each is
served by a real collectors process. Every endpoint is asked over the whole store, with no filters, as the
dashboard does with window=all. Sizes alternate endpoint by endpoint, so load from other processes on the
machine falls on both alike. The collectors hand the rows of a statement that several endpoints run to every
request in the same store state for a moment (collectors/storage/recall.py), which a page's requests share; each
request here waits that moment out, so every figure is an endpoint's cost alone. Run: ``python -m
bench.api_latency [--small N] [--large N] [--rounds R] [--store-dir DIR]`` (with --store-dir the stores are kept
and reused by the next run).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request

from bench.page_render import stores
from collectors.storage.recall import RECALL_S
from devtools.processes import Collectors

SMALL, LARGE = 1_000, 1_000_000
GOAL_S = 1.0
ROUNDS = 3
TIMEOUT_S = 300.0
ENDPOINTS = (
    "report",
    "overview",
    "flow",
    "latency",
    "loss",
    "duplicates",
    "traces",
    "instrumentation",
    "dead-letters",
    "retries",
    "clock-skew",
    "sequences?channel=shop.orders&source=/bench/app&partitionkey=p0",
)


def answer_seconds(api: str, endpoint: str) -> float:
    """Seconds from sending one GET to having read its whole JSON answer; NaN when it answered an error."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{api}/api/v1/{endpoint}", timeout=TIMEOUT_S) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        print(f"{endpoint}: HTTP {exc.code} after {time.perf_counter() - started:.1f} s", flush=True)
        return math.nan
    return time.perf_counter() - started


def measure(apis: dict[int, str], rounds: int) -> dict[int, dict[str, float]]:
    """Median answer seconds per store size and endpoint, after one warm-up request per endpoint."""
    times: dict[int, dict[str, list[float]]] = {size: {e: [] for e in ENDPOINTS} for size in apis}
    for endpoint in ENDPOINTS:
        for api in apis.values():
            answer_seconds(api, endpoint)
    for _ in range(rounds):
        for endpoint in ENDPOINTS:
            for size, api in apis.items():
                time.sleep(RECALL_S)  # no answer reuses the rows of the one before
                times[size][endpoint].append(answer_seconds(api, endpoint))
    return {size: {e: statistics.median(v) for e, v in endpoints.items()} for size, endpoints in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_latency", description=__doc__)
    parser.add_argument("--small", type=int, default=SMALL, help="spans in the baseline store")
    parser.add_argument("--large", type=int, default=LARGE, help="spans in the large store")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="requests per endpoint (median reported)")
    parser.add_argument("--store-dir", help="keep the built stores here and reuse them on the next run")
    args = parser.parse_args(argv)
    workdir = args.store_dir or tempfile.mkdtemp(prefix="eventscope-bench-")
    os.makedirs(workdir, exist_ok=True)
    collectors: dict[int, Collectors] = {}
    try:
        for spans, path in stores(workdir, (args.small, args.large)).items():
            collectors[spans] = Collectors(redis_url=None, store=path)
        results = measure({size: process.api for size, process in collectors.items()}, args.rounds)
    finally:
        for process in collectors.values():
            process.stop()
        if not args.store_dir:
            shutil.rmtree(workdir, ignore_errors=True)
    small, large = results[args.small], results[args.large]
    print(f"API answer time, median of {args.rounds} (goal: under {GOAL_S:g} s at {args.large:,} spans)")
    print(f"  {'endpoint':<16} {f'{args.small:,} spans':>14} {f'{args.large:,} spans':>16} {'ratio':>8}  goal")
    for endpoint in ENDPOINTS:
        verdict = "ok" if large[endpoint] < GOAL_S else "OVER" if large[endpoint] >= GOAL_S else "ERROR"
        ratio = large[endpoint] / small[endpoint]
        name = endpoint.split("?", 1)[0]
        print(f"  {name:<16} {small[endpoint]:>12.3f} s {large[endpoint]:>14.3f} s {ratio:>8.0f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
