"""Soak: a mixed good and hostile load against one real collectors process for a bounded time, then the
count of what was acknowledged or published against what was stored, and the process's RSS over time.

OTLP/HTTP: sample-shop span batches (fresh ids, retried on 429/503 as exporters do) interleaved with
hostile requests: undecodable protobuf, a wrong content type, broken gzip, and batches holding a span
with an all-zero trace id (partial success: the rest is acknowledged). The bus: CloudEvents in four
streams interleaved with hostile payloads (deep nesting, lone surrogates, NUL bytes, invalid UTF-8,
random binary, a wrong specversion, 1 MiB blobs). The baselines are the acknowledged spans and the
messages Redis handed to the tap (PUBLISH's receiver count); the goal is 0 lost and a flat RSS.
Run: ``./run bench soak [--seconds N]`` (default 600).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.request
from collections import Counter

import duckdb
import redis
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bench.ingest import PROTOBUF, SPANS_PER_BATCH, CollectorsProcess, payload_stream

DEFAULT_SECONDS = 600
BATCHES_PER_S = 4  # 2,048 spans/s
EVENTS_PER_S = 400
HOSTILE_EVERY = 5  # one hostile bus message per this many events
TICK_S = 0.05
STREAMS = 4
RSS_SAMPLES = 10
DRAIN_S = 120
MIB = 1 << 20
_DEEP = b"[" * 1000 + b"]" * 1000
_DEEP_EVENT = b'{"specversion":"1.0","id":"d","source":"/d","type":"t","data":' + _DEEP + b"}"
_SURROGATE = b'{"specversion":"1.0","id":"\\ud800","source":"/s","type":"t","sequence":"%d"}'
# (what, payload maker, the kind the tap must record)
HOSTILE_BUS = (
    ("deep array", lambda rng, n: _DEEP, "unenveloped"),
    ("deep CloudEvent", lambda rng, n: _DEEP_EVENT, "malformed"),
    ("lone surrogate", lambda rng, n: _SURROGATE % n, "malformed"),
    ("binary", lambda rng, n: b"\xff" + rng.randbytes(rng.randrange(16, 4096)), "unenveloped"),
    ("NUL bytes", lambda rng, n: b"\x00" * rng.randrange(1, 256), "unenveloped"),
    ("invalid UTF-8", lambda rng, n: b'{"specversion":"1.0","id":"\xc3\x28","source":"/u","type":"t"}', "unenveloped"),
    ("specversion 2.0", lambda rng, n: b'{"specversion":"2.0","id":"v","source":"/v","type":"t"}', "malformed"),
)  # fmt: skip
BLOB = ("1 MiB blob", lambda rng, n: b"x" * MIB, "unenveloped")
BLOB_EVERY = 200  # hostile messages
# DuckDB's block cache grows with the store up to its memory limit: a small limit makes that part of the
# RSS level off within the first minute, so growth after it would be a leak, not the cache filling.
STORE_MEMORY_LIMIT = "128MiB"


class Tally:
    """Counters shared by the load threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount


def _post(connection: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection.request("POST", "/v1/traces", body=body, headers=headers)
    answer = connection.getresponse()
    return answer.status, answer.read()


def _rejected(answer: bytes) -> int:
    return ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans


def _with_a_zero_trace_id(body: bytes) -> bytes:
    request = ExportTraceServiceRequest.FromString(body)
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = bytes(16)
    return request.SerializeToString()


def _export(port: int, body: bytes, tally: Tally) -> None:
    """Post one batch until it is answered for good, as an exporter retries 429/503; count acked spans."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        while True:
            status, answer = _post(connection, body, {"Content-Type": PROTOBUF})
            if status == 200:
                tally.add("spans acked", SPANS_PER_BATCH - _rejected(answer))
                tally.add("spans rejected", _rejected(answer))
                return
            if status not in (429, 503):
                tally.add(f"good export answered {status}")
                return
            tally.add("exports retried")
            connection.close()
            time.sleep(0.2)
    finally:
        connection.close()


def _hostile_export(port: int, index: int, body: bytes, tally: Tally) -> None:
    kind = index % 4
    if kind == 3:
        return _export(port, _with_a_zero_trace_id(body), tally)
    requests = (
        ("undecodable protobuf", b"\x0a\xff\xff\xff\xff\x0f garbage", {"Content-Type": PROTOBUF}),
        ("wrong content type", body, {"Content-Type": "text/plain"}),
        ("broken gzip", gzip.compress(body)[:-9], {"Content-Type": PROTOBUF, "Content-Encoding": "gzip"}),
    )
    what, hostile, headers = requests[kind]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        status, _ = _post(connection, hostile, headers)
    finally:
        connection.close()
    tally.add(f"hostile OTLP ({what}) answered {status}")
    return None


def otlp_load(port: int, stop: threading.Event, tally: Tally) -> None:
    """Good span batches at BATCHES_PER_S; after every fourth one, a hostile request."""
    bodies = payload_stream(SPANS_PER_BATCH * 10**9)  # lazy: only what is sent is ever made
    index = 0
    while not stop.is_set():
        started = time.monotonic()
        body = next(bodies)
        if index % 4 == 3:
            _hostile_export(port, index // 4, next(bodies), tally)
        _export(port, body, tally)
        index += 1
        stop.wait(max(0.0, 1 / BATCHES_PER_S - (time.monotonic() - started)))


def _event(run: str, stream: int, sequence: int) -> bytes:
    source = f"/soak/{run}"
    body = {"specversion": "1.0", "id": f"{run}-{stream}-{sequence}", "source": source, "type": "soak.happened"}
    return json.dumps({**body, "sequence": str(sequence), "partitionkey": f"p{stream}"}).encode()


def _hostile_bus(rng: random.Random, index: int) -> tuple[str, bytes, str]:
    what, make, kind = BLOB if index % BLOB_EVERY == BLOB_EVERY - 1 else HOSTILE_BUS[index % len(HOSTILE_BUS)]
    return what, make(rng, index), kind


def bus_load(redis_url: str, prefix: str, stop: threading.Event, tally: Tally) -> None:
    """CloudEvents at EVENTS_PER_S in STREAMS streams, one hostile payload per HOSTILE_EVERY events."""
    client = redis.Redis.from_url(redis_url)
    rng = random.Random(11)
    sequences = [0] * STREAMS
    sent = hostile = 0
    run = prefix.rstrip(".").rsplit(".", 1)[-1]
    while not stop.is_set():
        started = time.monotonic()
        pipe, kinds = client.pipeline(transaction=False), []
        for _ in range(int(EVENTS_PER_S * TICK_S)):
            stream = sent % STREAMS
            sequences[stream] += 1
            pipe.publish(prefix + "good", _event(run, stream, sequences[stream]))
            kinds.append("event")
            sent += 1
            if sent % HOSTILE_EVERY == 0:
                _, payload, kind = _hostile_bus(rng, hostile)
                pipe.publish(prefix + "hostile", payload)
                kinds.append(kind)
                hostile += 1
        for kind, receivers in zip(kinds, pipe.execute(), strict=True):
            tally.add("bus published")
            tally.add(f"bus heard {kind}" if receivers else "bus unheard (no subscriber)")
        stop.wait(max(0.0, TICK_S - (time.monotonic() - started)))
    client.close()


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=60) as answer:
        return json.load(answer)


def _drain(port: int, spans: int, messages: int) -> dict:
    """The health answer once every acked span and heard message is stored, or after DRAIN_S."""
    deadline = time.monotonic() + DRAIN_S
    while True:
        health = _get(port, "health")
        store = health["store"]
        if (store["spans"] >= spans and store["bus_messages"] >= messages) or time.monotonic() > deadline:
            return health
        time.sleep(0.5)


def _stored_kinds(store: str) -> Counter[str]:
    """Bus messages by kind, from the store file (read after the collectors stopped; the tap saw only
    the soak's channels)."""
    connection = duckdb.connect(store, read_only=True)
    try:
        rows = connection.execute("SELECT Kind, count(*) FROM bus_messages GROUP BY Kind").fetchall()
    finally:
        connection.close()
    return Counter(dict(rows))


def soak(seconds: float, redis_url: str) -> int:
    prefix = f"soak.{os.getpid()}."
    collectors = CollectorsProcess(
        redis_url,
        {
            "EVENTSCOPE_TAP_PATTERNS": prefix + "*",
            "EVENTSCOPE_BROKER_POLL_S": "1",
            "EVENTSCOPE_STORE_MEMORY_LIMIT": STORE_MEMORY_LIMIT,
        },
    )
    pid, port = collectors.process.pid, collectors.port
    tally, stop = Tally(), threading.Event()
    try:
        deadline = time.monotonic() + 30
        while not _get(port, "health")["tap"]["connected"] and time.monotonic() < deadline:
            time.sleep(0.1)
        idle = rss_bytes(pid)
        threads = [
            threading.Thread(target=otlp_load, args=(port, stop, tally), daemon=True),
            threading.Thread(target=bus_load, args=(redis_url, prefix, stop, tally), daemon=True),
        ]
        for thread in threads:
            thread.start()
        started, samples = time.monotonic(), []
        for index in range(1, RSS_SAMPLES + 1):
            stop.wait(max(0.0, started + seconds * index / RSS_SAMPLES - time.monotonic()))
            samples.append((time.monotonic() - started, rss_bytes(pid), _get(port, "health")["status"]))
        stop.set()
        for thread in threads:
            thread.join(timeout=180)
        counts = tally.counts
        heard = sum(n for name, n in counts.items() if name.startswith("bus heard "))
        health = _drain(port, counts["spans acked"], heard)
        report = _get(port, f"report?channel={prefix}good&grace_s=0")
    finally:
        stop.set()
        collectors.process.terminate()
        collectors.process.wait(timeout=60)
    kinds = _stored_kinds(collectors.store)
    collectors.stop()
    return _print(seconds, idle, samples, counts, health, report, kinds)


def _print(seconds, idle, samples, counts, health, report, kinds) -> int:
    acked, stored = counts["spans acked"], health["store"]["spans"]
    heard = Counter({name.removeprefix("bus heard "): n for name, n in counts.items() if name.startswith("bus heard ")})
    published, recorded = sum(heard.values()), health["store"]["bus_messages"]
    totals = report["totals"]
    print(f"soak: {seconds:.0f} s of mixed good and hostile load against one collectors process")
    print(f"  OTLP spans acknowledged (baseline):     {acked:12,}")
    print(f"  OTLP spans stored:                      {stored:12,}  ratio {_ratio(stored, acked)}  "
          f"lost {acked - stored:,}")  # fmt: skip
    print(f"  OTLP spans rejected by partial success: {counts['spans rejected']:12,}  (all-zero trace ids)")
    print(f"  OTLP exports retried after 429/503:     {counts['exports retried']:12,}")
    for name in sorted(n for n in counts if n.startswith(("hostile OTLP", "good export"))):
        print(f"  {name}: {counts[name]:,}")
    print(f"  bus messages heard by the tap (baseline): {published:10,}  (published {counts['bus published']:,})")
    print(f"  bus messages recorded:                  {recorded:12,}  ratio {_ratio(recorded, published)}  "
          f"lost {published - recorded:,}")  # fmt: skip
    for kind in ("event", "malformed", "unenveloped"):
        print(f"    {kind:12} recorded {kinds.get(kind, 0):10,}  expected {heard.get(kind, 0):10,}")
    print(f"  bus report on the good channel: received {totals['received']:,}, missing {totals['missing']}, "
          f"duplicates {totals['duplicates']}")  # fmt: skip
    tap = health["tap"]
    print(f"  tap: stored as malformed by the store {tap['stored_as_malformed']}, unstored {tap['unstored']}, "
          f"reconnects {tap['reconnects']}, restarts {tap['supervisor']['restarts']}")  # fmt: skip
    print(f"  health at the end: {health['status']} {health['problems']}")
    print(f"  RSS idle before the load (baseline):    {idle / MIB:8.0f} MiB  (store memory limit {STORE_MEMORY_LIMIT})")
    for at, rss, status in samples:
        print(f"    t = {at:6.0f} s  RSS {rss / MIB:8.0f} MiB  ratio to idle {rss / idle:5.2f}  health {status}")
    first, middle, last = samples[0][1], samples[len(samples) // 2][1], samples[-1][1]
    print(f"  RSS last / first sample under load:     {last / first:8.2f}")
    print(f"  RSS last / middle sample (after warm-up): {last / middle:6.2f}  (flat: about 1)")
    lost = (acked - stored) + (published - recorded)
    wrong_kinds = any(kinds.get(kind, 0) != heard.get(kind, 0) for kind in ("event", "malformed", "unenveloped"))
    return 1 if lost or wrong_kinds or totals["missing"] or health["status"] != "ok" else 0


def _ratio(value: int, baseline: int) -> str:
    return f"{value / baseline:.4f}" if baseline else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help=f"how long (default {DEFAULT_SECONDS})")
    args = parser.parse_args(argv)
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        print("REDIS_URL is not set: run through ./run bench soak", file=sys.stderr)
        return 2
    return soak(args.seconds, redis_url)


if __name__ == "__main__":
    sys.exit(main())
