"""Bytes per span on ClickHouse: the sample shop's spans stored by the clickhouseexporter's default DDL, in chdb.

The whole shop runs in this process against the Redis in REDIS_URL with tracing on (every span kept in memory), places
``--orders`` orders, and its spans go into the exporter's ``otel_traces`` as the exporter maps them
(devtools/exporter_tables.py), in inserts of 512 spans (the SDK's export batch). After the parts are merged
(``OPTIMIZE ... FINAL``), ``system.parts`` gives the compressed and uncompressed bytes and the bytes on disk; the
baseline, measured on the same spans, is their size as OTLP protobuf, which is what the Collector receives. The read
mode view is then read once in full, beside a plain read of the exporter's table, and grouped by two facts, beside
the same grouping of the raw attributes, each as a ratio.
Run: ``python -m bench.clickhouse_size [--orders N]`` with REDIS_URL set (``./run bench clickhouse_size``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collectors.storage.clickhouse import exporter
from devtools.exporter_tables import PIPELINE_DATABASE, ChdbClient, create_pipeline, insert_spans
from sample_system.config import load_config
from sample_system.shop import Shop, exporter_factory_for
from sample_system.storefront import drive

ORDERS = 1_000
SPANS_PER_BATCH = 512
SECONDS_PER_DAY = 86_400


def shop_spans(redis_url: str, orders: int) -> list:
    """Every span the shop's services finish while ``orders`` orders go through it."""
    memory = InMemorySpanExporter()
    config = load_config({"REDIS_URL": redis_url, "SAMPLE_TRACING": "on", "SAMPLE_SEED": "1"})
    with Shop(config, exporter_factory_for(memory)) as shop:
        drive(shop.orders.place_order, rate=0, seed=1, stop=threading.Event(), limit=orders)
        shop.wait_idle(timeout_s=120)
    return list(memory.get_finished_spans())


def requests(spans: list) -> list[bytes]:
    return [
        encode_spans(spans[at : at + SPANS_PER_BATCH]).SerializeToString()
        for at in range(0, len(spans), SPANS_PER_BATCH)
    ]


def store(client: ChdbClient, bodies: list[bytes]) -> float:
    """Insert every request as the exporter does; the seconds the inserts took."""
    started = time.perf_counter()
    for body in bodies:
        insert_spans(client, ExportTraceServiceRequest.FromString(body))
    return time.perf_counter() - started


def part_sizes(client: ChdbClient) -> dict:
    client.command(f"OPTIMIZE TABLE {PIPELINE_DATABASE}.otel_traces FINAL")
    sql = (
        "SELECT sum(rows) AS rows, sum(data_compressed_bytes) AS compressed, "
        "sum(data_uncompressed_bytes) AS uncompressed, sum(bytes_on_disk) AS on_disk, count() AS parts "
        "FROM system.parts WHERE database = {db:String} AND table = 'otel_traces' AND active"
    )
    return client.query_arrow(sql, {"db": PIPELINE_DATABASE}).to_pylist()[0]


def read_seconds(client: ChdbClient, sql: str) -> float:
    started = time.perf_counter()
    client.query_arrow(sql)
    return time.perf_counter() - started


# An analysis-shaped read: the facts of every span, grouped; over the view, and the same attributes read raw.
FACTS_SQL = "SELECT MsgDestination, MsgConsumerGroup, count(), max(Sequence) FROM {table} GROUP BY 1, 2"
RAW_FACTS_SQL = (
    "SELECT SpanAttributes['messaging.destination.name'], SpanAttributes['messaging.consumer.group.name'], count(), "
    "max(toInt64OrNull(SpanAttributes['eventscope.sequence'])) FROM {table} GROUP BY 1, 2"
)


def main(redis_url: str, orders: int) -> dict:
    spans = shop_spans(redis_url, orders)
    bodies = requests(spans)
    otlp_bytes = sum(map(len, bodies))
    with tempfile.TemporaryDirectory() as workdir:
        client = ChdbClient(os.path.join(workdir, "chdb"))
        try:
            create_pipeline(client)
            exporter.create(client, PIPELINE_DATABASE)
            insert_s = store(client, bodies)
            sizes = part_sizes(client)
            source, view = f"{PIPELINE_DATABASE}.otel_traces", f"{exporter.own_database(PIPELINE_DATABASE)}.otel_traces"
            plain_s = read_seconds(client, f"SELECT * FROM {source}")
            view_s = read_seconds(client, f"SELECT * FROM {view}")
            raw_facts_s = read_seconds(client, RAW_FACTS_SQL.format(table=source))
            facts_s = read_seconds(client, FACTS_SQL.format(table=view))
        finally:
            client.close()
    count = len(spans)
    per_span = {name: sizes[name] / count for name in ("compressed", "uncompressed", "on_disk")}
    report = {"spans": count, "otlp_per_span": otlp_bytes / count, **per_span, "parts": sizes["parts"]}
    print(f"shop spans: {count} from {orders} orders, {len(bodies)} inserts of up to {SPANS_PER_BATCH}")
    print(f"OTLP protobuf (baseline): {report['otlp_per_span']:.0f} bytes/span")
    for name in ("uncompressed", "compressed", "on_disk"):
        print(f"otel_traces {name}: {per_span[name]:.0f} bytes/span ({per_span[name] / report['otlp_per_span']:.2f} x)")
    print(f"inserts: {count / insert_s:,.0f} spans/s in this process (chdb, mapping in Python)")
    print(f"read all: exporter table {plain_s:.3f} s, read-mode view {view_s:.3f} s ({view_s / plain_s:.1f} x)")
    print(f"facts grouped: raw attributes {raw_facts_s:.3f} s, view {facts_s:.3f} s ({facts_s / raw_facts_s:.1f} x)")
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=ORDERS)
    options = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    if not url:
        print("REDIS_URL is not set: run benchmarks through ./run bench", file=sys.stderr)
        sys.exit(2)
    main(url, options.orders)
