"""Read mode: eventscope's tables as views over the tables an OpenTelemetry Collector's clickhouseexporter writes.

A team that already runs Collectors -> ClickHouse has every span in the exporter's ``otel_traces`` (its default
DDL: attributes in ``Map(LowCardinality(String), String)``, events and links in ``Nested`` columns), but not the
canonical messaging facts eventscope derives at ingest (collectors/ingest/normalize.py). Rather than copy the
pipeline's data, ``create`` makes a database of eventscope's own beside the pipeline's and defines there, under
eventscope's table names and with exactly its columns (collectors/storage/schema.py ``TABLES``), views that compute
those facts in ClickHouse SQL from the exporter's tables; the tables only eventscope writes (the bus tap's, the
broker poller's) are created empty there. The analyses then read one database, in either mode, by the same names.

The spans are the exception: ``otel_traces`` is a table of eventscope's there, filled by a materialised view from
the exporter's ``otel_traces`` as each block is inserted (and, when made, from what the exporter's table already
holds). The facts of a span depend on that span's row alone, so a materialised view computes them exactly, once
per span; as a plain view they were computed again inside every analysis, and ClickHouse took seconds to plan each
of those (the pairing reads the spans several times, and a stream count reads the pairing several times: about
30 s per answer on ten spans). The copy costs the spans' space a second time (docs/scale.md).

The facts' SQL is generated from normalize's table (``NAMES``, ``CONVERTERS``) and follows its rules and
instrumentation quirks one by one, so a span gets the same facts whether eventscope decoded it or the exporter
stored it. What the exporter's tables cannot give back is said where it is lost (docs/scale.md lists it).
Pure: SQL text out; ``create`` runs it through any client with ``command(sql)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from collectors.ingest import normalize
from collectors.ingest.otlp import SPAN_ID_BYTES, STATUS_CODES, TRACE_ID_BYTES, UNKNOWN_SERVICE
from collectors.storage import schema
from collectors.storage.clickhouse import ddl

READ_MODE_OPTION = "tables"
"""The store URL's query option that chooses read mode: ``clickhouse://HOST:PORT/DB?tables=exporter``."""
READ_MODE_VALUE = "exporter"
WRITE_MODE_VALUE = "eventscope"
DATABASE_SUFFIX = "_eventscope"
"""eventscope's own database in read mode is the pipeline's database name with this suffix."""

EXPORTER_TRACES = "otel_traces"
EXPORTER_LOGS = "otel_logs"
EXPORTER_METRICS = {
    "gauge": "otel_metrics_gauge",
    "sum": "otel_metrics_sum",
    "histogram": "otel_metrics_histogram",
    "exponential_histogram": "otel_metrics_exponential_histogram",
    "summary": "otel_metrics_summary",
}
"""The exporter's default table names (its ``traces_table_name``, ``logs_table_name``, ``metrics_tables``)."""

DERIVED = ("otel_traces", "span_links", "otel_logs", "otel_metrics")
"""eventscope's tables that read mode derives from the exporter's tables (eventscope never writes them); the others
are created empty, for the bus tap and the broker poller."""
COPIED = "otel_traces"
"""The derived table kept as a copy, filled by a materialised view (``COPY_VIEW``); the other derived ones are views."""
VIEWS = tuple(table for table in DERIVED if table != COPIED)
COPY_VIEW = "otel_traces_from_exporter"
"""The materialised view that computes eventscope's otel_traces rows from every block inserted into the exporter's."""

SERVICE_NAME = "service.name"
_TEMPORALITIES = ("Unspecified", "Delta", "Cumulative")  # the OTLP enum, as collectors/ingest/metrics.py names it


class Client(Protocol):
    """What ``create`` needs of a ClickHouse connection (collectors/storage/clickhouse/client.py has the real ones)."""

    def command(self, sql: str, parameters: Mapping | None = None) -> object: ...

    def query_arrow(self, sql: str, parameters: Mapping) -> object: ...


class ReadModeError(ValueError):
    """The store URL's read-mode option has a value this version does not know."""


def read_mode(spec: str) -> bool:
    """Whether a ``--store`` spec names an exporter's database to read (``?tables=exporter``) rather than eventscope's
    own tables to write; ReadModeError for an unknown ``tables`` value. Only ``clickhouse://`` and ``chdb:`` specs
    can be in read mode."""
    split = urlsplit(spec)
    if split.scheme not in ("clickhouse", "chdb"):
        return False
    values = parse_qs(split.query, keep_blank_values=True).get(READ_MODE_OPTION, [WRITE_MODE_VALUE])
    if len(values) != 1 or values[0] not in (READ_MODE_VALUE, WRITE_MODE_VALUE):
        known = f"{READ_MODE_VALUE} or {WRITE_MODE_VALUE}"
        raise ReadModeError(f"--store option {READ_MODE_OPTION}= must be {known}, got {', '.join(values)!r}")
    return values[0] == READ_MODE_VALUE


def own_database(pipeline_database: str) -> str:
    """eventscope's database beside a pipeline's, in read mode."""
    return pipeline_database + DATABASE_SUFFIX


def statements(pipeline_database: str, database: str | None = None) -> list[str]:
    """The DDL that makes eventscope's tables in ``database`` (default: ``own_database``) over the pipeline's."""
    target = _ident(database or own_database(pipeline_database))
    source = _ident(pipeline_database)
    made = [f"CREATE DATABASE IF NOT EXISTS {target}"]
    made += [_empty_table(target, table) for table in schema.TABLES if table not in DERIVED]
    made.append(ddl.create_table(COPIED, target, copy_digest(pipeline_database)))
    copy_view = f"CREATE MATERIALIZED VIEW IF NOT EXISTS {target}.{COPY_VIEW} TO {target}.{COPIED}"
    made.append(f"{copy_view} AS\n{traces_select(source)}")
    made.append(_view(target, "span_links", links_select(source)))
    made.append(_view(target, "otel_logs", logs_select(source)))
    made.append(_view(target, "otel_metrics", metrics_select(source)))
    return made


def create(client: Client, pipeline_database: str, database: str | None = None) -> str:
    """Make eventscope's database over a pipeline's; returns its name. Idempotent: views are replaced, the copy of
    the spans is kept, made again when this version computes it differently, and given the spans it lacks."""
    name = database or own_database(pipeline_database)
    target, source = _ident(name), _ident(pipeline_database)
    client.command(f"CREATE DATABASE IF NOT EXISTS {target}")
    noted = client.query_arrow(
        "SELECT engine, comment FROM system.tables WHERE database = {db:String} AND name = {table:String}",
        {"db": name, "table": COPIED},
    ).to_pylist()
    if noted and (noted[0]["engine"] == "View" or noted[0]["comment"] != copy_digest(pipeline_database)):
        client.command(f"DROP TABLE IF EXISTS {target}.{COPY_VIEW}")  # made by a version that computed it otherwise
        client.command(f"DROP TABLE IF EXISTS {target}.{COPIED}")
    for sql in statements(pipeline_database, database):
        client.command(sql)
    # what the exporter's table held before the materialised view existed (or while it was being made again); a
    # span both copied here and by the view collapses to one row (ReplacingMergeTree, read with FINAL)
    client.command(
        f"INSERT INTO {target}.{COPIED} SELECT * FROM ({traces_select(source)}) AS new "
        f"WHERE (new.TraceId, new.SpanId) NOT IN (SELECT TraceId, SpanId FROM {target}.{COPIED})"
    )
    return name


def copy_digest(pipeline_database: str) -> str:
    """A digest of how the copy of the spans is computed, noted as its table's comment."""
    return hashlib.sha256(traces_select(_ident(pipeline_database)).encode()).hexdigest()[:16]


# -- SQL building blocks ----------------------------------------------------------------------------------------


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _array(values) -> str:
    return "[" + ", ".join(_literal(v) for v in values) + "]"


def _view(target: str, table: str, select: str) -> str:
    return f"CREATE OR REPLACE VIEW {target}.{_ident(table)} AS\n{select}"


def _empty_table(target: str, table: str) -> str:
    columns = ",\n".join(f"    {_ident(c.name)} {ddl.column_type(c)}" for c in schema.TABLES[table])
    return f"CREATE TABLE IF NOT EXISTS {target}.{_ident(table)} (\n{columns}\n) ENGINE = MergeTree ORDER BY tuple()"


def json_text(expr: str) -> str:
    """A JSON string literal of a String expression (``/`` unescaped, as Python's encoder leaves it)."""
    return f"replaceAll(toJSONString(toValidUTF8(toString({expr}))), '\\\\/', '/')"


def json_object(map_expr: str) -> str:
    """``{"key": "value", ...}`` of a Map(String, String), keys in the Map's order, separators as the decoder's."""
    member = f"concat({json_text('k')}, ': ', {json_text('v')})"
    pairs = f"arrayMap((k, v) -> {member}, mapKeys({map_expr}), mapValues({map_expr}))"
    return f"concat('{{', arrayStringConcat({pairs}, ', '), '}}')"


def _json_list(item: str, arrays: dict[str, str]) -> str:
    """``[item, ...]`` over parallel arrays (a Nested column's subcolumns), each element named by its key."""
    names = ", ".join(arrays)
    sources = ", ".join(arrays.values())
    return f"concat('[', arrayStringConcat(arrayMap(({names}) -> {item}, {sources}), ', '), ']')"


_ROW = "x"
"""The alias of the exporter's row in every view's outer SELECT."""


def _nanos(expr: str) -> str:
    return f"toUnixTimestamp64Nano(toDateTime64({expr}, 9))"


# -- otel_traces: the exporter's columns as eventscope's, and the canonical facts -----------------------------

_ZERO_TRACE = "0" * TRACE_ID_BYTES * 2
_ZERO_SPAN = "0" * SPAN_ID_BYTES * 2
# The exporter stores any span; the decoder rejects the ones collectors/ingest/otlp.py id_problem names, and only
# ever writes ids as lowercase hex.
_TRACE_ID = f"match({{}}, '^[0-9a-f]{{{{{TRACE_ID_BYTES * 2}}}}}$') AND {{}} != '{_ZERO_TRACE}'"
_SPAN_ID = f"match({{}}, '^[0-9a-f]{{{{{SPAN_ID_BYTES * 2}}}}}$') AND {{}} != '{_ZERO_SPAN}'"
_STORABLE = (
    _TRACE_ID.format("TraceId", "TraceId")
    + " AND "
    + _SPAN_ID.format("SpanId", "SpanId")
    + f" AND (ParentSpanId = '' OR match(ParentSpanId, '^[0-9a-f]{{{SPAN_ID_BYTES * 2}}}$'))"
    + f" AND arrayAll(x -> {_TRACE_ID.format('x', 'x')}, `Links.TraceId`)"
    + f" AND arrayAll(x -> {_SPAN_ID.format('x', 'x')}, `Links.SpanId`)"
)
# The exporter writes pdata's names (``Producer``, ``Error``); before v0.100 it wrote the protobuf enum's.
_KIND_CODES = tuple(f"SPAN_KIND_{kind.upper()}" for kind in ("Unspecified", "Internal", "Server", "Client"))
_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
_KIND_OLD = (*_KIND_CODES, "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER")
_STATUS_OLD = tuple(f"STATUS_CODE_{code.upper()}" for code in STATUS_CODES)


def _renamed(column: str, old: tuple[str, ...], new: tuple[str, ...]) -> str:
    """``new`` names, from either spelling; any other text (not the exporter's) is the first, as the decoder reads
    an unknown enum value."""
    text = f"toString({column})"
    return f"transform({text}, {_array(old + new)}, {_array(new + new)}, {_literal(new[0])})"


def _text_column(column: str) -> str:
    """A String (or LowCardinality) column of the exporter's row as plain, valid UTF-8 text."""
    return f"toValidUTF8(CAST({_c(column)}, 'String'))"


def _c(column: str) -> str:
    """A column of the exporter's row, qualified: the view's own columns have the same names as the exporter's."""
    return f"{_ROW}.{_ident(column)}"


def _event_json() -> str:
    item = (
        "concat('{\"Timestamp\": ', toString(toUnixTimestamp64Nano(t)), ', \"Name\": ', "
        + json_text("n")
        + ", ', \"Attributes\": ', "
        + json_object("a")
        + ", '}')"
    )
    return _json_list(item, {"t": _c("Events.Timestamp"), "n": _c("Events.Name"), "a": _c("Events.Attributes")})


def _link_json() -> str:
    item = (
        "concat('{\"TraceId\": ', "
        + json_text("ti")
        + ", ', \"SpanId\": ', "
        + json_text("si")
        + ", ', \"TraceState\": ', "
        + json_text("ts")
        + ", ', \"Attributes\": ', "
        + json_object("la")
        + ", '}')"
    )
    arrays = {"ti": "Links.TraceId", "si": "Links.SpanId", "ts": "Links.TraceState", "la": "Links.Attributes"}
    return _json_list(item, {name: _c(column) for name, column in arrays.items()})


def _service_name() -> str:
    """The decoder's ServiceName: ``service.name`` as text, ``unknown_service`` when the resource has none."""
    has_name = f"mapContains({_c('ResourceAttributes')}, '{SERVICE_NAME}')"
    return f"if({has_name}, {_text_column('ServiceName')}, '{UNKNOWN_SERVICE}')"


def _span_columns() -> dict[str, str]:
    """Each non-fact otel_traces column of eventscope's, computed from the exporter's row."""
    return {
        "Timestamp": f"toUnixTimestamp64Nano({_c('Timestamp')})",
        "TraceId": _text_column("TraceId"),
        "SpanId": _text_column("SpanId"),
        "ParentSpanId": _text_column("ParentSpanId"),
        "TraceState": _text_column("TraceState"),
        "SpanName": _text_column("SpanName"),
        "SpanKind": _renamed(_c("SpanKind"), _KIND_OLD, _KINDS),
        "ServiceName": _service_name(),
        "ResourceAttributes": json_object(_c("ResourceAttributes")),
        "ScopeName": _text_column("ScopeName"),
        "ScopeVersion": _text_column("ScopeVersion"),
        "SpanAttributes": json_object(_c("SpanAttributes")),
        # pdata subtracts unsigned: an end before the start wraps; the decoder stores 0
        "Duration": f"greatest(toInt64({_c('Duration')}), 0)",
        "StatusCode": _renamed(_c("StatusCode"), _STATUS_OLD, STATUS_CODES),
        "StatusMessage": _text_column("StatusMessage"),
        "Events": _event_json(),
        "Links": _link_json(),
    }


# How each normalize converter reads one attribute's text (the Map holds pdata's AsString of every value).
def _text(value: str) -> str:
    return f"nullIf({value}, '')"


def _lookup(mapping: Mapping[str, object]) -> Callable[[str], str]:
    keys, values = list(mapping), [str(v) for v in mapping.values()]
    return lambda value: f"nullIf(transform({value}, {_array(keys)}, {_array(values)}, ''), '')"


def _operation(value: str) -> str:
    known = {**{op: op for op in normalize.OPERATIONS}, **normalize._OPERATION_ALIASES}
    return _lookup(known)(f"lower({value})")


def _system(value: str) -> str:
    aliases = normalize.SYSTEM_ALIASES
    return f"nullIf(transform({value}, {_array(aliases)}, {_array(aliases.values())}, {value}), '')"


def _plus_one(value: str) -> str:
    return f"if(toInt64OrNull({value}) >= 0, toInt64OrNull({value}) + 1, NULL)"


def _redelivered(value: str) -> str:
    return f"if(position({value}, '''redelivered'': True') > 0, true, NULL)"


CONVERTERS: dict[str, Callable[[str], str]] = {
    "text": _text,
    "integer": lambda value: f"toInt64OrNull({value})",
    "operation": _operation,
    "system": _system,
    "celery state": _lookup(normalize.CELERY_STATES),
    "celery action": _lookup(normalize.CELERY_ACTIONS),
    "disposition": _lookup(normalize.SERVICEBUS_DISPOSITIONS),
    "retries + 1": _plus_one,
    "redelivered flag": _redelivered,
}
"""normalize.CONVERTERS in ClickHouse SQL, by the same names."""


def _attribute(name: str) -> str:
    return f"toValidUTF8(SpanAttributes[{_literal(name)}])"


def fact_expressions() -> dict[str, str]:
    """Each fact column from the attributes alone: the first name of normalize's table that gives a value.

    The exporter's table keeps no schema_url, so a span's declared convention version cannot put its names first:
    every span is read in the table's order (normalize's plan for no declared version).
    """
    by_column: dict[str, list[str]] = {column: [] for column in normalize.COLUMNS}
    columns = dict(normalize.FACTS)
    for name in normalize.NAMES:
        by_column[columns[name.fact]].append(CONVERTERS[name.convert](_attribute(name.attribute)))
    return {column: f"coalesce({', '.join(found)})" if found else "NULL" for column, found in by_column.items()}


_KAFKA_ID = r"^(.+)\.(\d+)\.(\d+)$"
_REDIS_PUBLISH = r"(?is)^S?PUBLISH (.+) \[1 other arguments\]$"
_SNS_TOPIC_ARN = r"^arn:[^:]+:sns:[^:]*:[^:]*:([^:]+)$"


def _raw_stage(source: str) -> str:
    """The exporter's rows (those the decoder would store) with every column, the raw facts and the rules' inputs."""
    facts = ",\n    ".join(f"{expr} AS raw_{column}" for column, expr in fact_expressions().items())
    statement = f"if({_attribute('db.statement')} != '', {_attribute('db.statement')}, {_attribute('db.query.text')})"
    inputs = {
        "has_attributes": "notEmpty(SpanAttributes)",
        "is_celery": "mapContains(SpanAttributes, 'celery.action')",
        "rpc_method": _attribute("rpc.method"),
        "has_rpc_method": "mapContains(SpanAttributes, 'rpc.method')",
        "is_redis": f"'{normalize.REDIS_SYSTEM}' IN ({_attribute('db.system')}, {_attribute('db.system.name')})",
        "redis_channel": f"extractGroups({statement}, {_literal(_REDIS_PUBLISH)})",
        "temp_destination": _attribute("messaging.temp_destination"),
        "quirk": _quirk_of("ScopeName"),
    }
    named = ",\n    ".join(f"{expr} AS {name}" for name, expr in inputs.items())
    return f"SELECT *,\n    {facts},\n    {named}\nFROM {source}.{_ident(EXPORTER_TRACES)}\nWHERE {_STORABLE}"


def _quirk_of(scope: str) -> str:
    """The QUIRKS key of a scope (itself or its nearest enclosing package), '' when none: normalize.quirk_for."""
    keys = sorted(normalize.QUIRKS, key=len, reverse=True)
    tests = ", ".join(
        f"{scope} = {_literal(k)} OR startsWith({scope}, {_literal(k + '.')}), {_literal(k)}" for k in keys
    )
    return f"multiIf({tests}, '')"


def _rules_stage(raw: str) -> str:
    """normalize's RULES (celery, Kafka ids, AWS methods and SNS ARNs, Redis PUBLISH statements, redeliveries)."""
    aws = "raw_MsgSystem IS NOT NULL AND startsWith(raw_MsgSystem, 'aws')"
    redis = "raw_MsgSystem IS NULL AND NOT is_celery AND is_redis AND notEmpty(redis_channel)"
    kafka_id = f"extractGroups(coalesce(raw_MsgMessageId, ''), {_literal(_KAFKA_ID)})"
    kafka = (
        "NOT is_celery AND raw_MsgSystem = 'kafka' AND raw_Sequence IS NULL AND notEmpty(kafka_id)"
        " AND (raw_MsgDestination IS NULL OR kafka_id[1] = raw_MsgDestination)"
    )
    methods = normalize.AWS_METHODS
    method = f"if(rpc_method IN {_array(methods)}, transform(rpc_method, {_array(methods)}, "
    method += f"{_array(methods.values())}, ''), raw_MsgOperation)"
    arn = f"extractGroups(coalesce(raw_MsgDestination, ''), {_literal(_SNS_TOPIC_ARN)})"
    deliveries = "if(is_celery AND raw_MsgOperation = 'process' AND raw_DeliveryCount IS NULL, 1, raw_DeliveryCount)"
    rules = {
        "MsgSystem": f"multiIf(is_celery, coalesce(raw_MsgSystem, '{normalize.CELERY_SYSTEM}'), {redis}, "
        f"'{normalize.REDIS_SYSTEM}', raw_MsgSystem)",
        "MsgOperation": f"multiIf(NOT is_celery AND {aws} AND has_rpc_method, {method}, {redis}, 'send', "
        "raw_MsgOperation)",
        "MsgDestination": f"multiIf(NOT is_celery AND {aws} AND notEmpty(arn), arn[1], {redis}, redis_channel[1], "
        "raw_MsgDestination)",
        "Sequence": f"if({kafka}, toInt64OrNull(kafka_id[3]), raw_Sequence)",
        "PartitionKey": f"if({kafka}, coalesce(raw_PartitionKey, kafka_id[2]), raw_PartitionKey)",
        "DeliveryCount": deliveries,
        "Redelivered": f"if(({deliveries}) > 1, true, raw_Redelivered)",
    }
    rest = [c for c in normalize.COLUMNS if c not in rules]
    computed = [f"{rules[c]} AS ruled_{c}" for c in rules] + [f"raw_{c} AS ruled_{c}" for c in rest]
    lets = f"{kafka_id} AS kafka_id, {arn} AS arn"
    return f"SELECT *, {lets},\n    " + ",\n    ".join(computed) + f"\nFROM ({raw})"


def _pika_destination() -> str:
    tests = []
    for suffix in (" send", " receive"):
        n = len(suffix)
        name = _text_column("SpanName")
        tests.append(f"endsWith({name}, '{suffix}') AND length({name}) > {n}, left({name}, length({name}) - {n})")
    return f"multiIf({', '.join(tests)}, ruled_MsgDestination)"


def _quirk_columns() -> dict[str, str]:
    """normalize.QUIRKS (pika's and aio-pika's destinations) over the ruled facts, by scope."""
    aio = (
        "quirk = 'opentelemetry.instrumentation.aio_pika' AND ruled_MsgDestination IS NOT NULL"
        " AND position(ruled_MsgDestination, ',') > 0 AND temp_destination NOT IN ('', 'false', '0')"
    )
    exchange = "substring(ruled_MsgDestination, 1, position(ruled_MsgDestination, ',') - 1)"
    routing = "substring(ruled_MsgDestination, position(ruled_MsgDestination, ',') + 1)"
    return {
        "MsgDestination": f"multiIf(NOT has_attributes, NULL, quirk = 'opentelemetry.instrumentation.pika', "
        f"{_pika_destination()}, {aio}, nullIf(if({exchange} != '', {exchange}, {routing}), ''), "
        "ruled_MsgDestination)",
        "MsgRoutingKey": f"if({aio} AND {routing} != '', {routing}, ruled_MsgRoutingKey)",
    }


_QUIRK_SQL_KEYS = ("opentelemetry.instrumentation.pika", "opentelemetry.instrumentation.aio_pika")


def traces_select(source: str) -> str:
    """eventscope's otel_traces, column for column, from the exporter's otel_traces in database ``source``."""
    if set(normalize.QUIRKS) != set(_QUIRK_SQL_KEYS):
        raise NotImplementedError(f"a quirk without SQL: {sorted(set(normalize.QUIRKS) - set(_QUIRK_SQL_KEYS))}")
    plain = _span_columns()
    quirks = _quirk_columns()
    final = []
    for name in schema.SPAN_COLUMNS:
        expr = plain[name] if name in plain else quirks.get(name, f"ruled_{name}")
        final.append(f"{expr} AS {_ident(name)}")
    body = _rules_stage(_raw_stage(source))
    return "SELECT\n    " + ",\n    ".join(final) + f"\nFROM ({body}) AS {_ROW}"


def links_select(source: str) -> str:
    """span_links: one row per link of every span the otel_traces view holds."""
    return (
        "SELECT TraceId, SpanId, LinkedTraceId, LinkedSpanId\n"
        f"FROM {source}.{_ident(EXPORTER_TRACES)}\n"
        "ARRAY JOIN `Links.TraceId` AS LinkedTraceId, `Links.SpanId` AS LinkedSpanId\n"
        f"WHERE {_STORABLE}"
    )


# -- otel_logs and otel_metrics ----------------------------------------------------------------------------


def logs_select(source: str) -> str:
    """eventscope's otel_logs from the exporter's. The exporter keeps one timestamp (the observed one when the
    record has none), so ObservedTimestamp is that timestamp too; a non-string body is pdata's JSON of it."""
    timestamp = f"toUnixTimestamp64Nano({_c('Timestamp')})"
    columns = {
        "Timestamp": timestamp,
        "ObservedTimestamp": timestamp,
        "TraceId": _text_column("TraceId"),
        "SpanId": _text_column("SpanId"),
        "TraceFlags": f"toInt32({_c('TraceFlags')})",
        "SeverityText": _text_column("SeverityText"),
        "SeverityNumber": f"toInt32({_c('SeverityNumber')})",
        "ServiceName": _service_name(),
        "Body": _text_column("Body"),
        "ResourceSchemaUrl": _text_column("ResourceSchemaUrl"),
        "ResourceAttributes": json_object(_c("ResourceAttributes")),
        "ScopeSchemaUrl": _text_column("ScopeSchemaUrl"),
        "ScopeName": _text_column("ScopeName"),
        "ScopeVersion": _text_column("ScopeVersion"),
        "ScopeAttributes": json_object(_c("ScopeAttributes")),
        "LogAttributes": json_object(_c("LogAttributes")),
        "EventName": _text_column("EventName"),
    }
    return _select(columns, schema.LOG_COLUMNS, f"{source}.{_ident(EXPORTER_LOGS)}")


def _select(columns: dict[str, str], order: tuple[str, ...], table: str) -> str:
    listed = ",\n    ".join(f"{columns[name]} AS {_ident(name)}" for name in order)
    return f"SELECT\n    {listed}\nFROM {table} AS {_ROW}"


def json_number(expr: str) -> str:
    """A Float64 as a JSON number; NaN and the infinities as the decoder's strings (collectors/ingest/otlp.py)."""
    infinite = f"if({expr} > 0, '\"Infinity\"', '\"-Infinity\"')"
    return f"multiIf(isNaN({expr}), '\"NaN\"', isInfinite({expr}), {infinite}, toString({expr}))"


def _exemplars_json() -> str:
    item = (
        "concat('{\"Timestamp\": ', toString(" + _nanos("t") + "), ', \"Value\": ', " + json_number("v") + ", "
        "', \"FilteredAttributes\": ', " + json_object("fa") + ", ', \"TraceId\": ', " + json_text("ti") + ", "
        "', \"SpanId\": ', " + json_text("si") + ", '}')"
    )
    arrays = {
        "t": "Exemplars.TimeUnix",
        "v": "Exemplars.Value",
        "fa": "Exemplars.FilteredAttributes",
        "ti": "Exemplars.TraceId",
        "si": "Exemplars.SpanId",
    }
    return _json_list(item, {name: _c(column) for name, column in arrays.items()})


def _quantiles_json() -> str:
    item = f"concat('{{\"Quantile\": ', {json_number('q')}, ', \"Value\": ', {json_number('v')}, '}}')"
    return _json_list(item, {"q": _c("ValueAtQuantiles.Quantile"), "v": _c("ValueAtQuantiles.Value")})


_NULL_TYPES = {
    "Value": "Nullable(Float64)",
    "AggregationTemporality": "Nullable(String)",
    "IsMonotonic": "Nullable(Bool)",
    "Count": "Nullable(Int64)",
    "Sum": "Nullable(Float64)",
    "Min": "Nullable(Float64)",
    "Max": "Nullable(Float64)",
    "BucketCounts": "Array(Int64)",
    "ExplicitBounds": "Array(Float64)",
    "Scale": "Nullable(Int32)",
    "ZeroCount": "Nullable(Int64)",
    "PositiveOffset": "Nullable(Int32)",
    "PositiveBucketCounts": "Array(Int64)",
    "NegativeOffset": "Nullable(Int32)",
    "NegativeBucketCounts": "Array(Int64)",
    "ValueAtQuantiles": "Nullable(String)",
}
"""The type of each per-type column, so that the five SELECTs of the UNION agree where a type lacks it."""


def _metric_columns(metric_type: str) -> dict[str, str]:
    common = {
        "ResourceAttributes": json_object(_c("ResourceAttributes")),
        "ResourceSchemaUrl": _text_column("ResourceSchemaUrl"),
        "ScopeName": _text_column("ScopeName"),
        "ScopeVersion": _text_column("ScopeVersion"),
        "ScopeAttributes": json_object(_c("ScopeAttributes")),
        "ScopeSchemaUrl": _text_column("ScopeSchemaUrl"),
        "ServiceName": _service_name(),
        "MetricName": _text_column("MetricName"),
        "MetricDescription": _text_column("MetricDescription"),
        "MetricUnit": _text_column("MetricUnit"),
        "MetricType": _literal(metric_type),
        "Attributes": json_object(_c("Attributes")),
        "StartTimeUnix": _nanos(_c("StartTimeUnix")),
        "TimeUnix": _nanos(_c("TimeUnix")),
        "Flags": f"toInt64({_c('Flags')})",
        "Exemplars": "'[]'" if metric_type == "summary" else _exemplars_json(),
    }
    temporality = f"arrayElement({_array(_TEMPORALITIES)}, {_c('AggregationTemporality')} + 1)"
    own = {
        "gauge": ("Value",),
        "sum": ("Value", "IsMonotonic"),
        "histogram": ("Count", "Sum", "Min", "Max", "BucketCounts", "ExplicitBounds"),
        "exponential_histogram": ("Count", "Sum", "Min", "Max", "Scale", "ZeroCount", "PositiveOffset",
                                  "PositiveBucketCounts", "NegativeOffset", "NegativeBucketCounts"),
        "summary": ("Count", "Sum"),
    }[metric_type]  # fmt: skip
    specific = {name: _c(name) for name in own}
    if metric_type in ("sum", "histogram", "exponential_histogram"):
        specific["AggregationTemporality"] = temporality
    if metric_type == "summary":
        specific["ValueAtQuantiles"] = _quantiles_json()
    typed = {
        name: f"CAST({specific.get(name, '[]' if kind.startswith('Array') else 'NULL')}, '{kind}')"
        for name, kind in _NULL_TYPES.items()
    }
    return {**common, **typed}


def metrics_select(source: str) -> str:
    """eventscope's one otel_metrics table: the exporter's five per-type tables, one after the other."""
    parts = [
        _select(_metric_columns(metric_type), schema.METRIC_COLUMNS, f"{source}.{_ident(table)}")
        for metric_type, table in EXPORTER_METRICS.items()
    ]
    return "\nUNION ALL\n".join(parts)
