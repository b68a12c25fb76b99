"""Dashboard page render time: every page in headless Chromium with 1,000,000 spans in the store, beside
the same page with 1,000 spans (the baseline), measured in the same run.

The stores are built by writing rows through collectors.storage.store.Store directly (a bench is not the
dashboard, so it may); each store is then served by a real collectors process and a real Streamlit
dashboard. "Rendered" means the page's title is shown and Streamlit has stopped running the script
and its fragments for a short settle time. Pages are opened paused (no live refresh) over the whole
store (window=all). Run: ``python -m bench.page_render [--small N] [--large N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from collectors.ingest.otlp import SPAN_COLUMNS
from collectors.storage.recall import RECALL_S
from collectors.storage.schema import BUS_COLUMNS
from collectors.storage.store import Store
from devtools.chromium import CHROMIUM_ARGS
from devtools.processes import Collectors, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
SMALL, LARGE = 1_000, 1_000_000
GOAL_S = 1.0  # every page under a second at 1,000,000 spans
GOAL_LARGE_S = 2.0  # and under two seconds at 10,000,000
ROUNDS = 3
SETTLE_S = 0.4  # the page must stay idle this long to count as rendered; subtracted from the figure
# longer than the dashboard's result cache, so every round asks the collectors again, and than the collectors' recall
# of shared rows (collectors/storage/recall.py), so that only one page's own requests share them
CACHE_EXPIRY_S = max(2.5, RECALL_S + 0.5)
BATCH = 50_000
CHANNELS = ("shop.orders", "shop.stock", "shop.payments", "shop.shipping")
GROUPS = {
    "shop.orders": "inventory",
    "shop.stock": "payments",
    "shop.payments": "shipping",
    "shop.shipping": "notifications",
}
PARTITIONS = 4
PAGES = (
    ("", "Overview"),  # the default page lives at the root URL
    ("latency", "Latency"),
    ("ordering", "Ordering and loss"),
    ("duplicates", "Duplicates"),
    ("traces", "Traces"),
    ("event", "Event"),
    ("dead-letters", "Dead letters"),
    ("broker", "Broker"),
    ("instrumentation", "Instrumentation health"),
    ("scenarios", "Scenarios"),
)


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _span(**fields) -> tuple:
    defaults = {"TraceState": "", "ResourceAttributes": "{}", "ScopeName": "bench", "ScopeVersion": "",
                "StatusMessage": "", "Events": "[]", "Links": "[]", "StatusCode": "Unset"}  # fmt: skip
    row = {**defaults, **fields}
    return tuple(row.get(column) for column in SPAN_COLUMNS)


def event_rows(index: int, start_ns: int) -> tuple[list[tuple], tuple]:
    """One event: its producer span, two consumer spans (one in a linked trace), and its bus message."""
    channel = CHANNELS[index % len(CHANNELS)]
    partition = f"p{index % PARTITIONS}"
    sequence = index // (len(CHANNELS) * PARTITIONS) + 1
    trace_id, event_id = _hex(index + 1, 32), f"ev-{index}"
    producer_id, consumer_id, view_id = _hex(3 * index + 1, 16), _hex(3 * index + 2, 16), _hex(3 * index + 3, 16)
    t = start_ns + index * 1_000_000
    attrs = json.dumps(
        {"messaging.system": "redis", "messaging.destination.name": channel, "messaging.message.id": event_id}
    )
    common = {"MsgSystem": "redis", "MsgDestination": channel, "MsgMessageId": event_id, "CeSource": "/bench/app",
              "CeType": channel + ".event", "Sequence": sequence, "PartitionKey": partition,
              "SpanAttributes": attrs}  # fmt: skip
    link = json.dumps([{"TraceId": trace_id, "SpanId": producer_id, "TraceState": "", "Attributes": {}}])
    spans = [
        _span(Timestamp=t, TraceId=trace_id, SpanId=producer_id, ParentSpanId="", SpanName=f"send {channel}",
              SpanKind="Producer", ServiceName="orders", Duration=300_000, MsgOperation="send", **common),
        _span(Timestamp=t + 2_000_000, TraceId=trace_id, SpanId=consumer_id, ParentSpanId=producer_id,
              SpanName=f"process {channel}", SpanKind="Consumer", ServiceName=GROUPS[channel], Duration=1_500_000,
              MsgOperation="process", MsgConsumerGroup=GROUPS[channel], Outcome="processed", Attempts=1, Links=link,
              **common),
        _span(Timestamp=t + 2_500_000, TraceId=_hex(10**12 + index, 32), SpanId=view_id, ParentSpanId="",
              SpanName=f"process {channel}", SpanKind="Consumer", ServiceName="order-view", Duration=800_000,
              MsgOperation="process", MsgConsumerGroup="order-view", Outcome="processed", Attempts=1, Links=link,
              **common),
    ]  # fmt: skip
    bus = {"ArrivalNs": t + 1_000_000, "ArrivalSeq": index, "Channel": channel, "Pattern": "*", "Size": 300,
           "Valid": True, "Error": None, "EventId": event_id, "Source": "/bench/app", "Type": channel + ".event",
           "Subject": f"order-{index}", "EventTime": None, "Sequence": sequence, "PartitionKey": partition,
           "TraceId": trace_id, "Payload": "{}"}  # fmt: skip
    return spans, tuple(bus.get(column) for column in BUS_COLUMNS)


def build_store(path: str, spans: int, open_store: Callable[[str], Store] = Store) -> None:
    """A store holding ``spans`` spans (three per event) and a bus message per event, ending now; ``open_store``
    opens it at ``path`` (a DuckDB file by default)."""
    events = spans // 3
    start_ns = time.time_ns() - events * 1_000_000
    store = open_store(path)
    try:
        for first in range(0, events, BATCH):
            span_batch, bus_batch = [], []
            for index in range(first, min(first + BATCH, events)):
                event_spans, bus = event_rows(index, start_ns)
                span_batch.extend(event_spans)
                bus_batch.append(bus)
            store.write("otel_traces", span_batch, timeout=3600)
            store.write("bus_messages", bus_batch, timeout=3600)
    finally:
        store.close()


def stores(workdir: str, sizes: tuple[int, ...]) -> dict[int, str]:
    """One store per size in ``workdir`` (``spans-N.duckdb``), built unless already there."""
    paths = {}
    for spans in sizes:
        path = os.path.join(workdir, f"spans-{spans}.duckdb")
        if not os.path.exists(path):
            started = time.perf_counter()
            build_store(path, spans)
            print(f"store with {spans:,} spans built in {time.perf_counter() - started:.0f} s", flush=True)
        paths[spans] = path
    return paths


class Dashboard:
    """``streamlit run dashboard/app.py`` against one collectors API, on a free port."""

    def __init__(self, api: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "EVENTSCOPE_API": api}
        args = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.port",
                str(self.port), "--server.address", "127.0.0.1", "--server.headless", "true"]  # fmt: skip
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).status == 200, 60)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def render_seconds(page, url: str, path: str, title: str, timeout_s: float = 120.0) -> float:
    """Seconds from navigation to a rendered page: title shown, Streamlit idle for SETTLE_S."""
    started = time.perf_counter()
    page.goto(f"{url}/{path}?window=all&paused=1")
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=timeout_s * 1000)
    idle_since = None
    while time.perf_counter() - started < timeout_s:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        now = time.perf_counter()
        if running:
            idle_since = None
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= SETTLE_S:
            return idle_since - started
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not finish rendering in {timeout_s:.0f} s")


def measure(apis: dict[int, str], rounds: int) -> dict[int, dict[str, float]]:
    """Median render seconds per store size and page. Sizes alternate page by page, so load from other
    processes on the machine falls on both alike."""
    from playwright.sync_api import sync_playwright

    dashboards = {size: Dashboard(api) for size, api in apis.items()}
    times = {size: {path: [] for path, _ in PAGES} for size in apis}
    try:
        with sync_playwright() as playwright:
            executable = shutil.which("chromium") or shutil.which("chromium-browser")
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            for dashboard in dashboards.values():  # warm-up: Streamlit's first script run, imports
                render_seconds(page, dashboard.url, "", "Overview")
            for _ in range(rounds):
                for path, title in PAGES:
                    for size, dashboard in dashboards.items():
                        time.sleep(CACHE_EXPIRY_S)
                        times[size][path].append(render_seconds(page, dashboard.url, path, title))
            browser.close()
    finally:
        for dashboard in dashboards.values():
            dashboard.stop()
    return {size: {path: statistics.median(values) for path, values in pages.items()} for size, pages in times.items()}


def goal_s(spans: int) -> float:
    """The render time a page must stay under with this many spans in the store."""
    return GOAL_S if spans <= 1_000_000 else GOAL_LARGE_S


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.page_render", description=__doc__)
    parser.add_argument("--small", type=int, default=SMALL, help="spans in the baseline store")
    parser.add_argument("--large", type=int, default=LARGE, help="spans in the large store")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="visits per page (median reported)")
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
    goal = goal_s(args.large)
    print(f"page render time, headless Chromium, median of {args.rounds} (goal: under {goal:g} s at {args.large:,})")
    print(f"  {'page':<20} {f'{args.small:,} spans':>14} {f'{args.large:,} spans':>16} {'ratio':>7}  goal")
    for path, title in PAGES:
        verdict = "ok" if large[path] < goal else "OVER"
        ratio = large[path] / small[path]
        print(f"  {title[:20]:<20} {small[path]:>12.2f} s {large[path]:>14.2f} s {ratio:>7.2f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
