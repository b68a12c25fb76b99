"""ClickHouse as the store: the stock exporter's spans, the tap's messages and the broker samples reach chdb,
a retried export counts once, and the API answers as it does on DuckDB; a real server when one is named."""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
import uuid

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind

from collectors.storage import spec
from collectors.storage.clickhouse.client import ChdbClient, ServerClient
from devtools.exporter_tables import ChdbClient as PipelineClient
from devtools.exporter_tables import create_pipeline, insert_spans
from tests.processes import Collectors, RedisServer, wait_until
from tests.unit.test_store_parity import _first_difference, _same

pytestmark = pytest.mark.integration
ENV = {"EVENTSCOPE_BROKER_POLL_S": "0.2", "EVENTSCOPE_GRPC_LISTEN": "off"}
SERVER_URL = os.environ.get("EVENTSCOPE_TEST_CLICKHOUSE_URL")
CHANNEL = "shop.orders"


def shop_spans(messages: int = 3) -> list:
    """A producer and a consumer per message, with the messaging attributes the analyses read, and links."""
    memory = InMemorySpanExporter()
    tracer = {}
    for service in ("orders", "billing"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer[service] = provider.get_tracer("shop")
    for n in range(messages):
        common = {"messaging.system": "redis", "messaging.destination.name": CHANNEL, "messaging.message.id": f"m{n}"}
        with tracer["orders"].start_as_current_span(
            f"send {CHANNEL}", kind=SpanKind.PRODUCER, attributes={**common, "messaging.operation.type": "send"}
        ) as producer:
            pass
        with tracer["billing"].start_as_current_span(
            f"process {CHANNEL}",
            context=trace.set_span_in_context(producer),
            kind=SpanKind.CONSUMER,
            links=[Link(producer.get_span_context())],
            attributes={**common, "messaging.operation.type": "process", "messaging.consumer.group.name": "billing"},
        ):
            pass
    return list(memory.get_finished_spans())


def export(collectors: Collectors, spans: list) -> None:
    assert OTLPSpanExporter(endpoint=f"{collectors.api}/v1/traces").export(spans) == SpanExportResult.SUCCESS


def stored(collectors: Collectors) -> dict:
    return collectors.get("health")["store"]


@pytest.fixture
def redis_server():
    server = RedisServer()
    yield server
    server.stop()


def test_spans_messages_and_samples_reach_chdb_and_a_retried_export_counts_once(tmp_path, redis_server):
    directory = str(tmp_path / "chdb")
    collectors = Collectors(redis_server.url, store=f"chdb:{directory}", extra_env=ENV)
    try:
        spans = shop_spans()
        export(collectors, spans)
        export(collectors, spans)  # the exporter's retry of the same spans
        redis_server.client().publish(CHANNEL, b'{"not": "a cloudevent"}')
        wait_until(lambda: stored(collectors)["bus_messages"] == 1, what="the tapped message in the store")
        wait_until(lambda: collectors.get("health")["broker"]["samples"] >= 1, what="a broker sample")
        health = collectors.get("health")
        assert health["store"]["engine"] == "chdb"
        assert health["store"]["spans"] == len(spans) == 6
    finally:
        collectors.stop()
    client = ChdbClient(directory)  # the process has stopped: every row it answered for is on disk
    try:

        def count(sql: str) -> int:
            return client.query_arrow(sql, {}).column(0)[0].as_py()

        assert count("SELECT count() FROM otel_traces") == 6  # not merely once after FINAL: never inserted twice
        assert count("SELECT count() FROM span_links") == 3
        assert count("SELECT count() FROM bus_messages") == 1
        assert count("SELECT count() FROM broker_samples") >= 1
    finally:
        client.close()


ANSWER_WAIT_S = 300  # an analysis on chdb on a busy shared machine; the answers are compared, not timed
ANSWER_TIME = "generated_at_ns"  # when the answer was made, the one field that differs by design


def _timeless(answer: object) -> object:
    if isinstance(answer, dict):
        return {key: _timeless(value) for key, value in answer.items() if key != ANSWER_TIME}
    if isinstance(answer, list):
        return [_timeless(item) for item in answer]
    return answer


def _answer(collectors: Collectors, path: str) -> object:
    request = urllib.request.Request(f"{collectors.api}/api/v1/{path}", headers=collectors.auth)
    with urllib.request.urlopen(request, timeout=ANSWER_WAIT_S) as response:
        return _timeless(json.load(response))


@pytest.fixture(scope="module")
def duckdb_and_chdb(tmp_path_factory):
    """A DuckDB and a chdb collectors process, each sent the same spans by the stock exporter."""
    directory = tmp_path_factory.mktemp("parity")
    spans = shop_spans(messages=5)
    duck = Collectors(None, store=str(directory / "store.duckdb"), extra_env=ENV)
    chdb = Collectors(None, store=f"chdb:{directory / 'chdb'}", extra_env=ENV)
    try:
        for collectors in (duck, chdb):
            export(collectors, spans)
        yield duck, chdb
    finally:
        duck.stop()
        chdb.stop()


PARITY_PATHS = [
    "report",
    "overview",
    "flow",
    "latency",
    "loss",
    "duplicates",
    "traces",
    "events/m1",
    "messages",
]


@pytest.mark.parametrize("path", PARITY_PATHS)
def test_the_api_answers_the_same_on_chdb_as_on_duckdb(duckdb_and_chdb, path):
    duck, chdb = duckdb_and_chdb
    _assert_same(_answer(chdb, path), _answer(duck, path))


def _assert_same(got: object, want: object) -> None:
    """Equal answers, floats to the parity test's relative 1e-12 (the engines may round an interpolated
    percentile's last bit apart: tests/unit/test_store_parity.py ``RELATIVE``)."""
    got, want = _comparable(got), _comparable(want)
    assert _same(got, want), _first_difference(want, got)


def _comparable(answer: object) -> object:
    """The answer with the lists no analysis orders in a fixed order: latency's samples (a draw by each engine's own
    hash, every one of them here) and flow's edges (in the order the engine grouped them)."""
    if isinstance(answer, dict):
        for key in ("samples", "edges"):
            if isinstance(answer.get(key), list):
                answer = {**answer, key: sorted(answer[key], key=repr)}
    return answer


@pytest.mark.skipif(SERVER_URL is None, reason="EVENTSCOPE_TEST_CLICKHOUSE_URL names no ClickHouse server")
def test_two_collectors_processes_write_one_clickhouse_server():
    base = spec.parse(SERVER_URL)
    database = f"eventscope_test_{uuid.uuid4().hex[:12]}"  # a database of its own, dropped afterwards
    user, password = (urllib.parse.quote(part, safe="") for part in (base.username, base.password))
    url = f"clickhouse://{user}:{password}@{base.host}:{base.port}/{database}"
    client = ServerClient(base.host, base.port, database, base.username, base.password)
    first = Collectors(None, store=url, extra_env=ENV)
    second = Collectors(None, store=url, extra_env=ENV)
    try:
        spans = shop_spans()
        export(first, spans)
        export(second, spans)  # the retry reached the other process
        assert stored(first)["engine"] == "clickhouse"
        assert stored(first)["spans"] == stored(second)["spans"] == 6
        # two processes inserting the same export at the same instant, past both checks: still read once
        client.insert_arrow("otel_traces", client.query_arrow("SELECT * FROM otel_traces", {}))
        assert client.query_arrow("SELECT count() AS n FROM otel_traces", {}).to_pylist() == [{"n": 12}]
        assert stored(first)["spans"] == 6
    finally:
        first.stop()
        second.stop()
        client.command(f"DROP DATABASE IF EXISTS {database}")
        client.close()


def _pipeline_with(directory: str, spans: list) -> None:
    """A chdb directory holding what an OpenTelemetry Collector's clickhouseexporter would have stored for ``spans``
    (its default DDL, its row mapping: devtools/exporter_tables.py), and nothing eventscope wrote."""
    client = PipelineClient(directory)
    try:
        create_pipeline(client)
        insert_spans(client, encode_spans(spans))
    finally:
        client.close()


@pytest.fixture(scope="module")
def read_mode_and_duckdb(tmp_path_factory):
    """A collectors process reading an exporter's tables (chdb, ?tables=exporter) and a DuckDB one sent the
    same spans by the stock exporter."""
    directory = tmp_path_factory.mktemp("read-mode")
    spans = shop_spans(messages=5)
    _pipeline_with(str(directory / "pipeline"), spans)
    duck = Collectors(None, store=str(directory / "store.duckdb"), extra_env=ENV)
    reading = Collectors(None, store=f"chdb:{directory / 'pipeline'}?tables=exporter", extra_env=ENV)
    try:
        export(duck, spans)
        yield reading, duck
    finally:
        duck.stop()
        reading.stop()


def test_read_mode_shows_a_pipelines_spans_that_eventscope_never_ingested(read_mode_and_duckdb):
    reading, duck = read_mode_and_duckdb
    health = reading.get("health")
    assert health["store"]["engine"] == "chdb" and health["store"]["location"].endswith("?tables=exporter")
    assert health["store"]["spans"] == duck.get("health")["store"]["spans"] == 10
    _assert_same(_answer(reading, "flow"), _answer(duck, "flow"))
    _assert_same(_answer(reading, "latency"), _answer(duck, "latency"))
    assert _answer(reading, "events/m1") == _answer(duck, "events/m1")


def test_read_mode_refuses_telemetry_sent_to_eventscope(read_mode_and_duckdb):
    reading, _ = read_mode_and_duckdb
    assert OTLPSpanExporter(endpoint=f"{reading.api}/v1/traces").export(shop_spans(1)) == SpanExportResult.FAILURE
    assert reading.get("health")["store"]["spans"] == 10
