"""Read mode over a clickhouseexporter's tables: the same spans give the same rows as eventscope's own decoder.

Spans come from the real OpenTelemetry SDK (every attribute name normalize's table maps, every rule and quirk, events,
links, every kind and status, attribute values of every type) and go both ways: through eventscope's OTLP decoder
into rows, and into the exporter's default DDL tables in chdb as the exporter's Go code maps them
(devtools/exporter_tables.py). The views' rows must equal the decoder's, order aside. One difference is by
construction: the exporter's Map holds every attribute value as text (pcommon AsString), so in the JSON columns a
number, boolean or list reads back as a string; those values are compared as that text.
"""

from __future__ import annotations

import json
import time

import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.metrics import Observation
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from collectors.ingest import normalize, otlp
from collectors.ingest.logs import decode_logs
from collectors.ingest.metrics import decode_metrics
from collectors.storage import schema
from collectors.storage.clickhouse import exporter
from devtools.exporter_tables import (
    PIPELINE_DATABASE,
    ChdbClient,
    as_string,
    create_pipeline,
    insert_logs,
    insert_metrics,
    insert_spans,
)

JSON_COLUMNS = {c.name for c in schema.TABLES["otel_traces"] if c.base_type == "JSON"}
SAMPLES = {
    "text": "v",
    "integer": 41,
    "operation": "publish",
    "system": "aws.sqs",
    "celery state": "RETRY",
    "celery action": "run",
    "disposition": "abandon",
    "retries + 1": 2,
    "redelivered flag": "{'exchange': '', 'routing_key': 'q', 'redelivered': True}",
}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One chdb with the exporter's tables and eventscope's read-mode database over them, made once (a second)."""
    connection = ChdbClient(str(tmp_path_factory.mktemp("chdb") / "chdb"))
    create_pipeline(connection)
    exporter.create(connection, PIPELINE_DATABASE)
    yield connection
    connection.close()


@pytest.fixture
def client(made):
    """That chdb with every table emptied."""
    tables = made.query_arrow(
        "SELECT database, name FROM system.tables "
        "WHERE database IN ({a:String}, {b:String}) AND engine NOT LIKE '%View'",
        {"a": PIPELINE_DATABASE, "b": exporter.own_database(PIPELINE_DATABASE)},
    ).to_pylist()
    for table in tables:
        made.command(f"TRUNCATE TABLE `{table['database']}`.`{table['name']}`")
    return made


def sdk_spans(make) -> list:
    """The finished spans of ``make(provider)`` (a function that starts spans through the SDK)."""
    found = InMemorySpanExporter()
    for resource in (Resource.create({"service.name": "shop", "host.name": "h/1"}), Resource({"team": "x"})):
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(found))
        make(provider)
        provider.shutdown()
    return list(found.get_finished_spans())


def one_name_each(provider) -> None:
    """A span per name of normalize's table, alone, and each name again after an empty earlier one."""
    tracer = provider.get_tracer("corpus", "1.0")
    for name in normalize.NAMES:
        with tracer.start_as_current_span(f"{name.fact} {name.attribute}", kind=SpanKind.CONSUMER) as span:
            span.set_attribute(name.attribute, SAMPLES[name.convert])
        with tracer.start_as_current_span("as text") as span:
            span.set_attribute(name.attribute, str(SAMPLES[name.convert]))
    columns = dict(normalize.FACTS)
    for fact in columns:
        names = [n for n in normalize.NAMES if n.fact == fact]
        with tracer.start_as_current_span(f"all of {fact}") as span:
            span.set_attribute(names[0].attribute, "")
            for name in names[1:]:
                span.set_attribute(name.attribute, SAMPLES[name.convert])


RULED = [
    ("opentelemetry.instrumentation.celery", "run/t", {"celery.action": "run", "celery.task_name": "t"}),
    ("opentelemetry.instrumentation.celery", "retry", {"celery.action": "run", "celery.retries": 2}),
    ("opentelemetry.instrumentation.celery", "second", {"celery.action": "run", "celery.retries": 1}),
    ("opentelemetry.instrumentation.celery", "sent", {"celery.action": "apply_async", "messaging.system": "x"}),
    ("kafka", "orders receive", {"messaging.system": "kafka", "messaging.message.id": "orders.3.42"}),
    ("kafka", "other topic", {"messaging.system": "kafka", "messaging.destination": "b",
                              "messaging.message_id": "a.1.2"}),
    ("botocore", "SQS.SendMessage", {"messaging.system": "aws.sqs", "rpc.method": "SendMessage"}),
    ("botocore", "SNS.Publish", {"messaging.system": "aws.sns", "rpc.method": "Publish",
                                 "messaging.destination.name": "arn:aws:sns:eu-west-1:123:orders"}),
    ("ioredis", "publish", {"db.system": "redis", "db.statement": "publish shop.orders [1 other arguments]"}),
    ("redis", "PUBLISH", {"db.system.name": "redis", "db.query.text": "PUBLISH ? ?"}),
    ("redis", "SPUBLISH", {"db.system": "redis", "db.statement": "",
                           "db.query.text": "SPUBLISH a b [1 other arguments]"}),
    ("servicebus", "settle", {"messaging.system": "servicebus", "messaging.servicebus.message.delivery_count": 3}),
    ("opentelemetry.instrumentation.pika", "orders send", {"messaging.destination": "ctag1.x"}),
    ("opentelemetry.instrumentation.pika.utils", "q receive", {"messaging.system": "rabbitmq"}),
    ("opentelemetry.instrumentation.pika", "no attributes send", {}),
    ("opentelemetry.instrumentation.aio_pika", ",q send", {"messaging.destination": ",q",
                                                          "messaging.temp_destination": True}),
    ("opentelemetry.instrumentation.aio_pika", "ex,rk send", {"messaging.destination": "ex,rk",
                                                             "messaging.temp_destination": True}),
    ("opentelemetry.instrumentation.aio_pika", "kept", {"messaging.destination": "ex,rk"}),
]  # fmt: skip


def rules_and_quirks(provider) -> None:
    for scope, name, attributes in RULED:
        with provider.get_tracer(scope).start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attributes):
            pass


def shapes(provider) -> None:
    """Events, links, kinds, statuses and attribute values of every type and of awkward text."""
    tracer = provider.get_tracer("shapes", "2.0", schema_url="https://opentelemetry.io/schemas/1.26.0")
    linked = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    for kind in SpanKind:
        with tracer.start_as_current_span(f"kind {kind.name}", kind=kind) as span:
            span.set_status(Status(StatusCode.ERROR, 'it failed / "badly"') if kind == SpanKind.CLIENT else None)
    attributes = {"n": 3, "f": 1.5, "whole": 2.0, "yes": True, "list": ["a", "b"], "nums": [1, 2], "text": "é/\\\n\t"}
    links = [Link(linked, {"why": "because", "n": 1}), Link(linked)]
    with tracer.start_as_current_span("shaped", links=links, attributes=attributes) as span:
        span.add_event("retry", {"eventscope.attempt": 2, "note": "x"})
        span.add_event("plain")
        span.set_status(Status(StatusCode.OK))


CORPUS = (one_name_each, rules_and_quirks, shapes)


def request_of(spans) -> bytes:
    return encode_spans(spans).SerializeToString()


def view_rows(client: ChdbClient, table: str) -> list[tuple]:
    database = exporter.own_database(PIPELINE_DATABASE)
    return [tuple(row.values()) for row in client.query_arrow(f"SELECT * FROM {database}.{table}").to_pylist()]


def stringified(value):
    """A decoded JSON column as the exporter's Map leaves it: every attribute value as pcommon AsString text."""
    if isinstance(value, list):
        return [stringified(item) for item in value]
    return {
        key: ({k: _text(v) for k, v in item.items()} if key in ("Attributes", "FilteredAttributes") else item)
        for key, item in value.items()
    }


def _text(value) -> str:
    """A decoded attribute value (JSON: str, int, float, bool or list) as pcommon AsString writes it."""
    any_value = AnyValue()
    if isinstance(value, bool):
        any_value.bool_value = value
    elif isinstance(value, int):
        any_value.int_value = value
    elif isinstance(value, float):
        any_value.double_value = value
    elif isinstance(value, str):
        any_value.string_value = value
    else:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return as_string(any_value)


def expected_row(row: tuple) -> tuple:
    """A decoder row with its JSON columns as the view can give them back (attribute values as text)."""
    out = []
    for name, value in zip(schema.SPAN_COLUMNS, row, strict=True):
        if name in ("ResourceAttributes", "SpanAttributes"):
            value = {key: _text(item) for key, item in json.loads(value).items()}
        elif name in JSON_COLUMNS:
            value = stringified(json.loads(value))
        out.append(value)
    return tuple(out)


def parsed(row: tuple) -> tuple:
    return tuple(
        json.loads(value) if name in JSON_COLUMNS else value
        for name, value in zip(schema.SPAN_COLUMNS, row, strict=True)
    )


def key(row: tuple) -> str:
    return json.dumps(row, sort_keys=True, default=str)


@pytest.mark.parametrize("make", CORPUS, ids=lambda make: make.__name__)
def test_the_views_rows_equal_the_decoders_rows(client, make):
    body = request_of(sdk_spans(make))
    decoded = otlp.decode_traces(body, False)
    assert insert_spans(client, ExportTraceServiceRequest.FromString(body)) == len(decoded.rows) > 0
    got = sorted(map(parsed, view_rows(client, "otel_traces")), key=key)
    want = sorted(map(expected_row, decoded.rows), key=key)
    assert len(got) == len(want)
    for got_row, want_row in zip(got, want, strict=True):
        assert dict(zip(schema.SPAN_COLUMNS, got_row, strict=True)) == dict(
            zip(schema.SPAN_COLUMNS, want_row, strict=True)
        )
    assert sorted(view_rows(client, "span_links")) == sorted(decoded.links)


def test_json_text_is_the_decoders_text_where_every_value_is_text(client):
    """Key order, separators and escapes: the view's JSON text is byte for byte the decoder's, wherever the decoder's
    values are all strings of ASCII (elsewhere only the value types, or the escapes of non-ASCII, differ)."""
    body = request_of(sdk_spans(shapes) + sdk_spans(rules_and_quirks))
    insert_spans(client, ExportTraceServiceRequest.FromString(body))
    decoded = {row[2]: dict(zip(schema.SPAN_COLUMNS, row, strict=True)) for row in otlp.decode_traces(body, False).rows}
    compared = 0
    for row in view_rows(client, "otel_traces"):
        mine = dict(zip(schema.SPAN_COLUMNS, row, strict=True))
        theirs = decoded[mine["SpanId"]]
        for column in JSON_COLUMNS:
            text = theirs[column]
            as_text = expected_row(
                tuple(decoded_value if name != column else text for name, decoded_value in theirs.items())
            )[schema.SPAN_COLUMNS.index(column)]
            if text.isascii() and json.loads(text) == as_text:
                assert mine[column] == text, column
                compared += 1
            else:
                assert json.loads(mine[column]) == as_text, column
    assert compared > len(decoded)


def test_spans_the_decoder_rejects_are_not_in_the_view(client):
    request = ExportTraceServiceRequest.FromString(request_of(sdk_spans(shapes)))
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = bytes(16)
    spans[1].span_id = b"\x01\x02"
    insert_spans(client, request)
    stored = {row[2] for row in view_rows(client, "otel_traces")}
    assert spans[1].span_id.hex() not in stored and spans[0].span_id.hex() not in stored
    assert len(stored) == len(otlp.decode_traces(request.SerializeToString(), False).rows)


def test_the_exporters_default_ddl_and_the_eventscope_tables_are_accepted(client):
    database = exporter.own_database(PIPELINE_DATABASE)
    listed = client.query_arrow(f"SELECT name, engine FROM system.tables WHERE database = '{database}'").to_pylist()
    engines = {row["name"]: row["engine"] for row in listed}
    assert set(engines) == {*schema.TABLES, exporter.COPY_VIEW}
    assert {name for name, engine in engines.items() if engine == "View"} == set(exporter.VIEWS)
    assert engines[exporter.COPIED] == "ReplacingMergeTree" and engines[exporter.COPY_VIEW] == "MaterializedView"
    for table in schema.TABLES:
        described = client.query_arrow(f"DESCRIBE TABLE {database}.{table}").to_pylist()
        assert tuple(row["name"] for row in described) == schema.names(table)
        nullable = {row["name"] for row in described if row["type"].startswith("Nullable")}
        optional = {c.name for c in schema.TABLES[table] if not c.sql.endswith("NOT NULL") and "[]" not in c.sql}
        assert nullable == optional, table
    pipeline = client.query_arrow(
        f"SELECT name, engine_full FROM system.tables WHERE database = '{PIPELINE_DATABASE}'"
    ).to_pylist()
    assert all("MergeTree" in row["engine_full"] and "TTL" in row["engine_full"] for row in pipeline)


def test_creating_again_replaces_the_views_and_keeps_the_tables(client):
    client.command(f"INSERT INTO {exporter.own_database(PIPELINE_DATABASE)}.broker_channels VALUES (1, 'c', 2)")
    exporter.create(client, PIPELINE_DATABASE)
    assert view_rows(client, "broker_channels") == [(1, "c", 2)]


def test_spans_stored_before_read_mode_was_made_are_copied_once(client):
    body = request_of(sdk_spans(shapes))
    database = exporter.own_database(PIPELINE_DATABASE)
    client.command(f"DROP TABLE {database}.{exporter.COPY_VIEW}")  # as if the exporter wrote before eventscope came
    insert_spans(client, ExportTraceServiceRequest.FromString(body))
    assert view_rows(client, "otel_traces") == []
    exporter.create(client, PIPELINE_DATABASE)
    copied = view_rows(client, "otel_traces")
    assert sorted(row[2] for row in copied) == sorted(row[2] for row in otlp.decode_traces(body, False).rows)
    exporter.create(client, PIPELINE_DATABASE)  # made again (a restart): nothing copied twice
    assert sorted(view_rows(client, "otel_traces")) == sorted(copied)


@pytest.mark.parametrize("older", ["a table computed otherwise", "a view"])
def test_a_copy_made_by_another_version_is_made_again(client, older):
    database = exporter.own_database(PIPELINE_DATABASE)
    body = request_of(sdk_spans(rules_and_quirks))
    insert_spans(client, ExportTraceServiceRequest.FromString(body))
    want = sorted(view_rows(client, "otel_traces"))
    if older == "a view":
        client.command(f"DROP TABLE {database}.{exporter.COPY_VIEW}")
        client.command(f"DROP TABLE {database}.{exporter.COPIED}")
        client.command(f"CREATE VIEW {database}.{exporter.COPIED} AS SELECT 1 AS x")
    else:
        client.command(f"ALTER TABLE {database}.{exporter.COPIED} MODIFY COMMENT 'older'")
        stale = "UPDATE SpanName = 'stale' WHERE 1 SETTINGS mutations_sync = 1"
        client.command(f"ALTER TABLE {database}.{exporter.COPIED} {stale}")
    exporter.create(client, PIPELINE_DATABASE)
    assert sorted(view_rows(client, "otel_traces")) == want
    insert_spans(client, ExportTraceServiceRequest.FromString(request_of(sdk_spans(shapes))))  # and the view copies on
    assert len(view_rows(client, "otel_traces")) > len(want)


def test_logs_and_metrics_views_read_the_exporters_empty_tables(client):
    assert view_rows(client, "otel_logs") == []
    assert view_rows(client, "otel_metrics") == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("clickhouse://ch:9000/otel?tables=exporter", True),
        ("clickhouse://ch:9000/otel", False),
        ("clickhouse://ch:9000/otel?tables=eventscope", False),
        ("clickhouse://user:pw@ch:8123/otel?secure=1&tables=exporter", True),
        ("chdb:/data/otel?tables=exporter", True),
        ("chdb:/data/otel", False),
        ("duckdb:/data/store.duckdb?tables=exporter", False),
        ("/data/store.duckdb", False),
        ("", False),
    ],
)
def test_read_mode_is_chosen_by_the_store_url(spec, expected):
    assert exporter.read_mode(spec) is expected


@pytest.mark.parametrize(
    "spec",
    [
        "clickhouse://ch:9000/otel?tables=",
        "clickhouse://ch:9000/otel?tables=EXPORTER",
        "clickhouse://ch:9000/otel?tables=exporter&tables=exporter",
        "chdb:/x?tables=%00",
        "clickhouse://ch/otel?tables=exporter;DROP",
    ],
)
def test_an_unknown_read_mode_is_a_clear_error(spec):
    with pytest.raises(exporter.ReadModeError, match="tables= must be exporter or eventscope"):
        exporter.read_mode(spec)


def test_every_normalize_converter_and_quirk_has_sql():
    assert set(exporter.CONVERTERS) == set(normalize.CONVERTERS)
    assert set(exporter.fact_expressions()) == set(normalize.COLUMNS)
    assert "SELECT" in exporter.traces_select("otel")


def test_names_are_quoted_in_the_ddl():
    statements = exporter.statements("ot`el", "own db")
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS `own db`"
    assert all("`ot\\`el`." in s for s in statements if "VIEW" in s)


HOSTILE_ROWS = """
INSERT INTO otel.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, StatusCode, Duration,
                              SpanAttributes, ResourceAttributes, `Events.Timestamp`, `Events.Name`,
                              `Events.Attributes`, `Links.TraceId`, `Links.SpanId`, `Links.TraceState`,
                              `Links.Attributes`)
VALUES
    (now64(9), '0123456789abcdef0123456789abcdef', '0123456789abcdef', '', concat('bad ', unhex('ff'), ' send'),
     'weird', 'STATUS_CODE_ERROR', 18446744073709551615,
     map('eventscope.sequence', '99999999999999999999', unhex('fe'), unhex('ff41'), 'messaging.operation', 'PUBLISH',
         'eventscope.attempts', '1.5', 'messaging.system', 'kafka', 'messaging.message.id', 'x.1.2'),
     map('service.name', ''), [now64(9)], ['"quoted"\\n'], [map('a', '\\\\/')], [], [], [], []),
    (now64(9), '0123456789ABCDEF0123456789ABCDEF', '0123456789abcdef', '', 'upper-case id', 'Client', 'Ok', 1, map(),
     map(), [], [], [], [], [], [], []),
    (now64(9), 'zz3456789abcdef0123456789abcdefz', '0123456789abcdef', '', 'not hex', 'Client', 'Ok', 1, map(), map(),
     [], [], [], [], [], [], []),
    (now64(9), '0123456789abcdef0123456789abcdef', '0123456789abcdef', 'short', 'bad parent', 'Client', 'Ok', 1,
     map(), map(), [], [], [], [], [], [], []),
    (now64(9), '0123456789abcdef0123456789abcdef', '0123456789abcdef', '', 'bad link', 'Client', 'Ok', 1, map(),
     map(), [], [], [], [''], [''], [''], [map()])
"""


def test_rows_the_exporter_would_never_write_neither_break_nor_leak_into_the_views(client):
    client.command(HOSTILE_ROWS)
    (row,) = [dict(zip(schema.SPAN_COLUMNS, r, strict=True)) for r in view_rows(client, "otel_traces")]
    assert row["SpanName"] == "bad \ufffd send" and row["SpanKind"] == "Unspecified" and row["StatusCode"] == "Error"
    assert row["Duration"] == 0 and row["ServiceName"] == ""
    assert json.loads(row["SpanAttributes"])["\ufffd"] == "\ufffdA"
    assert json.loads(row["Events"])[0]["Name"] == '"quoted"\n'
    assert json.loads(row["Events"])[0]["Attributes"] == {"a": "\\/"}
    # an integer past Int64 or a fraction counts as absent: the Kafka id gives the offset instead
    assert row["Sequence"] == 2 and row["Attempts"] is None and row["MsgOperation"] == "send"
    assert (row["MsgSystem"], row["PartitionKey"]) == ("kafka", "1")
    assert view_rows(client, "span_links") == []


def sdk_logs() -> bytes:
    """Log records from the SDK: in a span and outside one, string and structured bodies, attributes of each type."""
    found = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "payments", "k8s.pod.name": "p/1"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(found))
    logger = provider.get_logger("shop.payments", "1.2", schema_url="https://opentelemetry.io/schemas/1.26.0")
    with TracerProvider().get_tracer("t").start_as_current_span("work"):
        logger.emit(body="card declined", severity_text="WARN", attributes={"n": 1, "ok": False, "why": "é"})
    logger.emit(body={"structured": [1, 2], "a": {"b": "c"}}, event_name="shop.refund")
    logger.emit(body="plain")
    return encode_logs(found.get_finished_logs()).SerializeToString()


LOG_JSON = {c.name for c in schema.TABLES["otel_logs"] if c.base_type == "JSON"}


def expected_log(row: tuple) -> dict:
    """A decoder log row as read mode gives it back: attribute values as text, one timestamp, the body parsed."""
    named = dict(zip(schema.LOG_COLUMNS, row, strict=True))
    for column in LOG_JSON:
        named[column] = {key: _text(value) for key, value in json.loads(named[column]).items()}
    named["ObservedTimestamp"] = named["Timestamp"]
    return named


def test_the_logs_view_gives_the_decoders_rows(client):
    body = sdk_logs()
    decoded = decode_logs(body, False)
    assert insert_logs(client, ExportLogsServiceRequest.FromString(body)) == len(decoded.rows) == 3
    got = [dict(zip(schema.LOG_COLUMNS, row, strict=True)) for row in view_rows(client, "otel_logs")]
    for row in got:
        for column in LOG_JSON:
            row[column] = json.loads(row[column])
    want = [expected_log(row) for row in decoded.rows]
    for rows in (got, want):
        for row in rows:  # a structured body is the same JSON, not the same text (Go's, compact, keys sorted)
            if row["Body"].startswith("{"):
                row["Body"] = json.loads(row["Body"])
    assert sorted(got, key=key) == sorted(want, key=key)


def sdk_metrics() -> bytes:
    """Every metric type from the SDK (a summary added by hand: the SDK makes none), exemplars from a sampled span."""
    reader = InMemoryMetricReader()
    views = [View(instrument_name="size", aggregation=ExponentialBucketHistogramAggregation())]
    resource = Resource.create({"service.name": "shop", "team": "x"})
    meter = MeterProvider(resource=resource, metric_readers=[reader], views=views).get_meter("shop", "2")
    with TracerProvider().get_tracer("t").start_as_current_span("work"):
        meter.create_counter("orders", unit="1", description="orders placed").add(3, {"channel": "shop.orders"})
        meter.create_histogram("latency", unit="ms").record(12.5, {"ok": True})
        meter.create_histogram("size").record(300)
    meter.create_up_down_counter("inflight").add(-2)
    meter.create_observable_gauge("depth", callbacks=[lambda options: [Observation(7, {"q": "a"})]])
    request = encode_metrics(reader.get_metrics_data())
    summary = request.resource_metrics[0].scope_metrics[0].metrics.add(name="rtt", unit="s")
    now = time.time_ns()  # the table's TTL drops points older than three days as they are inserted
    point = summary.summary.data_points.add(start_time_unix_nano=now - NS, time_unix_nano=now, count=4, sum=2.5)
    point.quantile_values.add(quantile=0.5, value=0.25)
    point.quantile_values.add(quantile=1.0, value=float("nan"))
    return request.SerializeToString()


METRIC_JSON = {c.name for c in schema.TABLES["otel_metrics"] if c.base_type == "JSON"}
SECONDS_ONLY = ("sum", "exponential_histogram")  # their tables' DateTime columns, in the DDL kept here
NS = 1_000_000_000
ARRAYS = [c.name for c in schema.TABLES["otel_metrics"] if c.base_type.endswith("[]")]


def expected_metric(row: tuple) -> dict:
    """A decoder metric row as read mode gives it back: attribute values as text, exemplar values as doubles, times
    in whole seconds where the exporter's table keeps no more."""
    named = dict(zip(schema.METRIC_COLUMNS, row, strict=True))
    for column in ("ResourceAttributes", "ScopeAttributes", "Attributes"):
        named[column] = {key: _text(value) for key, value in json.loads(named[column]).items()}
    whole = named["MetricType"] in SECONDS_ONLY
    exemplars = stringified(json.loads(named["Exemplars"]))
    for exemplar in exemplars:
        exemplar["Value"] = float(exemplar["Value"])
        exemplar["Timestamp"] -= exemplar["Timestamp"] % NS if whole else 0
    named["Exemplars"] = exemplars
    for column in ("StartTimeUnix", "TimeUnix"):
        named[column] -= named[column] % NS if whole else 0
    for column in ARRAYS:  # ClickHouse has no NULL array: a type without buckets has none, []
        named[column] = named[column] or []
    return named


def test_the_metrics_view_gives_the_decoders_rows(client):
    body = sdk_metrics()
    decoded = decode_metrics(body, False)
    assert insert_metrics(client, ExportMetricsServiceRequest.FromString(body)) == len(decoded.rows) == 6
    got = [dict(zip(schema.METRIC_COLUMNS, row, strict=True)) for row in view_rows(client, "otel_metrics")]
    for row in got:
        for column in METRIC_JSON:
            row[column] = None if row[column] is None else json.loads(row[column])
    want = [expected_metric(row) for row in decoded.rows]
    for row in want:
        row["ValueAtQuantiles"] = None if row["ValueAtQuantiles"] is None else json.loads(row["ValueAtQuantiles"])
    assert {row["MetricType"] for row in got} == set(exporter.EXPORTER_METRICS)
    assert sorted(got, key=key) == sorted(want, key=key)
