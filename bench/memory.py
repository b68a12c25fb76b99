"""Memory: peak RSS of the collectors process holding 1,000,000 spans, beside the same process idle.

The spans go in through OTLP/HTTP (the payloads of bench.ingest, made lazily so the sender stays
small); after the last one is committed the report and a trace are queried once, then the peak
resident set size (VmHWM) is read from /proc. Run: ``python -m bench.memory [--spans N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request

from bench.ingest import SPANS_PER_BATCH, CollectorsProcess, payload_stream, peak_rss_bytes, post_all

DEFAULT_SPANS = 1_000_448  # a whole number of batches just over one million
GOAL_BYTES = 1 << 30
MIB = 1 << 20


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _query(collectors: CollectorsProcess, path: str) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{collectors.port}/api/v1/{path}", timeout=600) as answer:
        answer.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--spans", type=int, default=DEFAULT_SPANS, help=f"spans to hold ({DEFAULT_SPANS:,})")
    args = parser.parse_args(argv)
    collectors = CollectorsProcess()
    try:
        pid = collectors.process.pid
        idle = peak_rss_bytes(pid)
        started = time.perf_counter()
        post_all(collectors, payload_stream(args.spans))
        elapsed = time.perf_counter() - started
        stored = collectors.health()["store"]["spans"]
        after_ingest = peak_rss_bytes(pid)
        _query(collectors, "report")
        _query(collectors, f"traces/{1:016x}{1:016x}")
        peak, now = peak_rss_bytes(pid), _rss_bytes(pid)
        store_bytes = sum(
            os.path.getsize(os.path.join(collectors.directory, name)) for name in os.listdir(collectors.directory)
        )
    finally:
        collectors.stop()
    spans = (args.spans // SPANS_PER_BATCH) * SPANS_PER_BATCH
    print(f"collectors memory holding {stored:,} spans (sent {spans:,} in {elapsed:.0f} s)")
    print(f"  peak RSS idle (baseline):     {idle / MIB:8.0f} MiB")
    print(f"  peak RSS during ingest:       {after_ingest / MIB:8.0f} MiB")
    print(f"  peak RSS with report, trace:  {peak / MIB:8.0f} MiB  (goal < {GOAL_BYTES / MIB:.0f} MiB)")
    print(f"  RSS at the end:               {now / MIB:8.0f} MiB")
    print(f"  ratio peak / idle:            {peak / idle:8.1f}")
    print(f"  ratio peak / goal:            {peak / GOAL_BYTES:8.2f}")
    print(f"  store files on disk:          {store_bytes / MIB:8.0f} MiB")
    return 0 if stored == spans else 1


if __name__ == "__main__":
    sys.exit(main())
