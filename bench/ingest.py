"""Ingest speed: spans/s through OTLP/HTTP into the store, beside the rate of merely decoding the same payloads.

The payloads are the stock OTLP encoder's output for sample-shop-like spans (producers and consumers with
messaging attributes and links), copied with fresh ids so that every span is new to the store. The
baseline decodes each payload and reads every span's fields in this process, storing nothing. The
collectors' figure is also given per CPU-second of the collectors process (the one-core rate), which
holds on a shared machine where wall time does not. The decode is also given with span attributes read the
way the collectors read them (collectors/ingest/wire.py), for information: the goal's baseline stays the
stock decoder's. Run: ``python -m bench.ingest [--spans N]``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind

from collectors.ingest import otlp, wire

ROOT = Path(__file__).resolve().parent.parent
SPANS_PER_BATCH = 512  # the BatchSpanProcessor's default export size
DEFAULT_SPANS = 102_400
SENDERS = 4  # concurrent exporters, as several services export at once
PROTOBUF = "application/x-protobuf"
GOAL_SPANS_PER_S = 30_000
GOAL_RATIO = 0.5


def _shop_spans(count: int) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders", "service.instance.id": "b-1"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("sample_system", "0.1.0")
    for index in range(count // 2):
        common = {
            "messaging.system": "redis",
            "messaging.destination.name": "shop.orders",
            "messaging.message.id": f"0190f0e8-7c1a-7000-8000-{index:012d}",
            "cloudevents.event_id": f"0190f0e8-7c1a-7000-8000-{index:012d}",
            "cloudevents.event_source": "/sample/orders/3f2a",
            "cloudevents.event_type": "shop.order.placed",
            "cloudevents.event_subject": f"order-{index}",
            "eventscope.sequence": index + 1,
            "eventscope.partitionkey": f"p{index % 4}",
        }
        with tracer.start_as_current_span("send shop.orders", kind=SpanKind.PRODUCER, attributes=common) as producer:
            producer.set_attribute("messaging.operation.type", "send")
            producer.set_attribute("eventscope.receivers", 3)
        consumer_attrs = {**common, "messaging.operation.type": "process", "messaging.consumer.group.name": "inventory"}
        consumer_attrs.update({"eventscope.outcome": "processed", "eventscope.attempts": 1})
        link = Link(producer.get_span_context())
        with tracer.start_as_current_span(
            "process shop.orders", kind=SpanKind.CONSUMER, links=[link], attributes=consumer_attrs
        ):
            pass
    return memory.get_finished_spans()


def payload_stream(total_spans: int) -> Iterator[bytes]:
    """Serialized ExportTraceServiceRequests of SPANS_PER_BATCH spans each, every id unique, made lazily."""
    template = encode_spans(_shop_spans(SPANS_PER_BATCH))
    for batch in range(total_spans // SPANS_PER_BATCH):
        request = ExportTraceServiceRequest()
        request.CopyFrom(template)
        for index, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
            pair = index // 2
            span.trace_id = struct.pack(">QQ", batch + 1, pair + 1)
            span.span_id = struct.pack(">II", batch + 1, index + 1)
            for link in span.links:
                link.trace_id = span.trace_id
                link.span_id = struct.pack(">II", batch + 1, index)
            if span.parent_span_id:
                span.parent_span_id = struct.pack(">II", batch + 1, index)
        yield request.SerializeToString()


def payloads(total_spans: int) -> list[bytes]:
    """All of payload_stream in a list."""
    return list(payload_stream(total_spans))


def _read_fields(span, attributes: dict | None = None) -> tuple:
    if attributes is None:
        attributes = {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}
    return (
        span.trace_id.hex(),
        span.span_id.hex(),
        span.parent_span_id.hex(),
        span.trace_state,
        span.name,
        span.kind,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        attributes,
        span.status.code,
        span.status.message,
        [(e.time_unix_nano, e.name) for e in span.events],
        [(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
    )


def _read_wire_fields(span) -> tuple:
    return _read_fields(span, otlp.wire_attributes(span.attributes)[0])


def decode_rate(bodies: list[bytes], request_type: type = ExportTraceServiceRequest, read=_read_fields) -> float:
    """Spans/s of protobuf parse plus reading each span's fields, nothing stored (the baseline)."""
    started = time.process_time()
    spans = 0
    for body in bodies:
        request = request_type.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    read(span)
                    spans += 1
    return spans / (time.process_time() - started)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class CollectorsProcess:
    """``python -m collectors serve`` on a free port with a fresh store on ``engine`` (collectors/storage/spec.py),
    no gRPC, and no Redis unless ``redis_url`` is given; ``env`` adds settings."""

    def __init__(self, redis_url: str | None = None, env: dict[str, str] | None = None, engine: str = "duckdb"):
        self.directory = tempfile.mkdtemp(prefix="eventscope-bench-")
        self.store = f"{engine}:{os.path.join(self.directory, 'store.' + engine)}"
        self.port = _free_port()
        args = [sys.executable, "-m", "collectors", "serve", "--listen", f"127.0.0.1:{self.port}"]
        args += ["--store", self.store, "--grpc-listen", "off"]
        inherited = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "EVENTSCOPE_TOKEN")}
        env = {**inherited, **(env or {})}
        if redis_url:
            args += ["--redis-url", redis_url]
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.health()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the collectors did not start") from None
                time.sleep(0.2)

    def health(self) -> dict:
        import json

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/health", timeout=30) as answer:
            return json.load(answer)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)


def _send(port: int, bodies: Iterator[bytes], lock: threading.Lock, errors: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        while not errors:
            with lock:
                body = next(bodies, None)
            if body is None:
                return
            while True:
                connection.request("POST", "/v1/traces", body=body, headers={"Content-Type": PROTOBUF})
                answer = connection.getresponse()
                answer.read()
                if answer.status == 200:
                    break
                if answer.status not in (429, 503):
                    errors.append(f"HTTP {answer.status}")
                    return
                connection.close()
                time.sleep(0.05)
    finally:
        connection.close()


def post_all(collectors: CollectorsProcess, bodies: Iterable[bytes]) -> tuple[float, float]:
    """Post every body over SENDERS keep-alive connections; (wall seconds, collectors CPU seconds)."""
    errors: list[str] = []
    shared, lock = iter(bodies), threading.Lock()
    threads = [threading.Thread(target=_send, args=(collectors.port, shared, lock, errors)) for _ in range(SENDERS)]
    cpu_before, started = cpu_seconds(collectors.process.pid), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - started, cpu_seconds(collectors.process.pid) - cpu_before
    if errors:
        raise RuntimeError(f"ingest failed: {errors[:3]}")
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--spans", type=int, default=DEFAULT_SPANS, help=f"spans to ingest ({DEFAULT_SPANS})")
    args = parser.parse_args(argv)
    bodies = payloads(args.spans)
    spans = len(bodies) * SPANS_PER_BATCH
    decode = max(decode_rate(bodies) for _ in range(3))  # best of 3: the machine is shared and noisy
    decode_wire = max(decode_rate(bodies, wire.ExportTraceServiceRequest, _read_wire_fields) for _ in range(3))
    collectors = CollectorsProcess()
    try:
        wall, cpu = post_all(collectors, bodies)
        stored = collectors.health()["store"]["spans"]
    finally:
        collectors.stop()
    if stored != spans:
        raise RuntimeError(f"stored {stored} spans of {spans}")
    per_cpu = spans / cpu
    print(f"OTLP/HTTP ingest, {spans:,} spans in batches of {SPANS_PER_BATCH}, {SENDERS} senders")
    print(f"  decode into rows (baseline, one core): {decode:12,.0f} spans/s")
    print(f"  ingest, per collectors CPU-second:     {per_cpu:12,.0f} spans/s  (goal >= {GOAL_SPANS_PER_S:,})")
    print(f"  ingest, wall clock:                    {spans / wall:12,.0f} spans/s  ({cpu / wall:.2f} cores busy)")
    print(f"  ratio ingest / decode (per core):      {per_cpu / decode:12.2f}  (goal >= {GOAL_RATIO})")
    print(f"  decode, attributes read as collectors: {decode_wire:12,.0f} spans/s  (for information)")
    print(f"  ratio ingest / that decode:            {per_cpu / decode_wire:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
