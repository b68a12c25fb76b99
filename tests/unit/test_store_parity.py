"""Every analysis endpoint answers the same on ClickHouse (chdb) as on DuckDB, on the same data.

The data are the property tests' generated streams: the pairing's spans of a few messages, traces, groups and
brokers (tests/unit/test_pairing_state.py ``spans``: links, publishes and deliveries recorded twice, SQS receipts,
RabbitMQ messages handed back) and the report's streams of observations at the bus tap and at a consumer group
(tests/unit/test_analysis_streams.py ``streams``: duplicates, redeliveries, gaps, negative sequences, ties), and a few
broker polls. Several draws go into one store at once, each under its own names, so that one load of chdb covers
many of them. The spans are written through the project's Store (DuckDB); its tables are copied into chdb, where the
pairing and the flows are either the views a store that others write reads or the tables the store's only writer
keeps (built from the copied spans), both of collectors/storage/clickhouse/state.py; then each endpoint's function
(what the API handler calls) runs on a DuckDB reader and on a ``ClickHouseReader`` with its default parameters and
a few filters, and the answers must be equal, types included. Floats are equal to a relative 1e-12: the percentiles
interpolate alike but round the last bit apart. Where an analysis leaves an order undefined (flow edges, events of
one instant among the newest examples, the latency samples, which each engine draws by its own hash), the answers
are compared in a defined order.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from collectors.analyses import (
    duplicates,
    event_life,
    flow,
    instrumentation,
    latency,
    loss,
    overview,
    report,
    sequences,
    slow_consumers,
    traces,
)
from collectors.analyses.filters import Filters
from collectors.bus import broker_stats
from collectors.contracts import observed
from collectors.ingest.otlp import SPAN_COLUMNS
from collectors.storage import queries
from collectors.storage.clickhouse import state
from collectors.storage.clickhouse.client import parameter_text
from collectors.storage.clickhouse.reader import ClickHouseReader, materialized_ctes
from collectors.storage.schema import BUS_COLUMNS, TABLES
from collectors.storage.store import Store
from tests.unit.test_analysis_streams import bus_row, span_row
from tests.unit.test_analysis_streams import streams as stream_observations
from tests.unit.test_pairing_state import spans as pairing_spans

chdb = pytest.importorskip("chdb")

NOW_NS = 10**12
"""A fixed now, so that lost gaps and settled events do not depend on the clock."""
COPIED = ("otel_traces", "span_links", "bus_messages", "broker_samples", "broker_channels", "broker_clients")
_CLICKHOUSE_TYPES = {"BIGINT": "Int64", "INTEGER": "Int64", "DOUBLE": "Float64", "BOOLEAN": "Bool",
                     "VARCHAR": "String", "JSON": "String"}  # fmt: skip


class ChdbClient:
    """The one method a ClickHouseReader needs, on an in-process chdb session."""

    def __init__(self, connection):
        self.connection = connection

    def query_arrow(self, sql: str, parameters: dict[str, object]):
        return self.connection.query(sql, "Arrowtable", params=parameters)

    def command(self, sql: str, parameters: dict[str, object] | None = None) -> None:
        params = {name: parameter_text(value) for name, value in (parameters or {}).items()}
        self.connection.query(sql, "CSV", params=params)


def _ddl(table: str) -> str:
    columns = []
    for column in TABLES[table]:
        kind = _CLICKHOUSE_TYPES[column.base_type]
        columns.append(f"`{column.name}` {kind if column.sql.endswith('NOT NULL') else f'Nullable({kind})'}")
    return f"CREATE TABLE {table} ({', '.join(columns)}) ENGINE = MergeTree ORDER BY tuple()"


@pytest.fixture(scope="module", params=("views", "kept"))
def clickhouse(request):
    connection = chdb.connect(":memory:")
    client = ChdbClient(connection)
    client.kept = request.param == "kept"
    for table in COPIED:
        client.query_arrow(_ddl(table), {})
    if not client.kept:
        state.create_paired_deliveries(client)
    yield client
    connection.close()


def _copy(duck, client: ChdbClient) -> None:
    for table in COPIED:
        client.query_arrow(f"TRUNCATE TABLE {table}", {})
        rows = duck.sql(f"SELECT * FROM {table}").to_arrow_table()  # noqa: F841 (read by Python())
        if rows.num_rows:
            client.connection.query(f"INSERT INTO {table} SELECT * FROM Python(rows)")
    if client.kept:
        state.KeptState(client).rebuild()


def _renamed(rows: list[tuple], draw: int) -> list[tuple]:
    """One draw's spans under names of their own (trace ids, span ids, message ids, channels, services)."""
    out = []
    for row in rows:
        span = dict(zip(SPAN_COLUMNS, row, strict=True))
        span["TraceId"] = f"{draw:02x}{span['TraceId'][2:]}"
        for key in ("MsgMessageId", "MsgDestination"):
            if span[key] is not None:
                span[key] = f"d{draw}-{span[key]}"
        links = json.loads(span["Links"])
        for link in links:
            link["TraceId"] = f"{draw:02x}{link['TraceId'][2:]}"
        span["Links"] = json.dumps(links)
        span["ServiceName"] = f"{span['ServiceName']}{draw % 3}"
        span["CeType"] = f"type{draw % 2}"
        out.append(tuple(span.values()))
    return out


def _broker_rows(samples: int) -> dict[str, list[tuple]]:
    """A few polls of the broker: samples (one after a counter reset), their channels and clients."""
    tables: dict[str, list[tuple]] = {"broker_samples": [], "broker_channels": [], "broker_clients": []}
    for n in range(samples):
        t = (n + 1) * 1_000_000
        calls = None if n == 1 else (n * 7) % 5 * 10
        tables["broker_samples"].append((t, n % 2, n + 1, calls, 100 * n, json.dumps({"node": n})))
        tables["broker_channels"] += [(t, f"s0-{c}", n + i) for i, c in enumerate("ab")]
        tables["broker_clients"].append((t, n, f"c{n}", "127.0.0.1:1", 1, 0, 10 * n, None if n % 2 else 1000))
    return tables


def _stream_rows(per_stream: dict, draw: int) -> tuple[list[tuple], list[tuple]]:
    """The streams of observations as bus messages and as one group's consumer spans."""
    spans, bus, order = [], [], 0
    for (channel, source, pk), observations in per_stream.items():
        for event, sequence, t, outcome, redelivered, origin in observations:
            order += 1
            name = f"s{draw}-{channel}"
            common = {"Sequence": sequence, "PartitionKey": pk}
            bus.append(bus_row(ArrivalNs=t * 1_000_000, ArrivalSeq=order + 1000 * draw, Channel=name,
                               EventId=f"s{draw}e{event}", Source=source, Type="t", Kind="event",
                               **common))  # fmt: skip
            carried = {}
            if origin is not None:
                carried = {"MsgSystem": "rabbitmq", "ParentSpanId": f"o{draw}{channel}{source}{pk}{origin}"}
            spans.append(
                span_row(
                    ServiceName=f"svc{order % 3}",
                    Timestamp=t * 1_000_000,
                    TraceId=f"f{draw:x}{order:030x}",
                    SpanId=f"f{draw:x}{order:014x}",
                    MsgDestination=name,
                    MsgMessageId=f"s{draw}e{event}",
                    MsgConsumerGroup=f"g{draw % 2}",
                    CeSource=source,
                    CeType="t",
                    Outcome=outcome,
                    Redelivered=redelivered,
                    SpanName="process",
                    **carried,
                    **common,
                )  # fmt: skip
            )
    return spans, bus


FILTERS = (
    Filters(),
    Filters(since_ns=2_000_000, until_ns=20_000_000),
    Filters(channel="d0-orders", service="a0"),
    Filters(group="g1", type="t"),
)


STREAMS = tuple((Filters(channel="s0-a"), "/s1", None, vantage) for vantage in ("bus", "g0", "g1"))
"""The streams whose sequences are compared: (channel filter, source, partition key, vantage)."""


def _answers(
    cursor, trace_ids: list[str], event_ids: list[str], filters: tuple = FILTERS, streams: tuple = STREAMS
) -> dict:
    """Every endpoint's answer (what the API handlers compute), keyed by a name that says which: each endpoint with
    no filter and with a time window (the first two ``filters``), the central ones with each other filter too."""
    answers: dict = {}
    for i, f in enumerate(filters):
        every = i < 2
        answers[f"report {i}"] = report.report(cursor, f, 5.0, NOW_NS)
        answers[f"overview {i}"] = {k: v for k, v in overview.overview(cursor, f).items() if k != "generated_at_ns"}
        answers[f"loss {i}"] = loss.loss(cursor, f, 5.0, NOW_NS)
        answers[f"duplicates {i}"] = duplicates.duplicates(cursor, f)
        answers[f"traces {i}"] = traces.search(cursor, f, None, None, None, None, 20)
        for by in latency.BY if every else ("channel",):
            answer = latency.latency(cursor, f, 1, by)
            # the samples are a reproducible draw by each engine's own hash: the same set, in its own order
            answer["samples"] = sorted(answer["samples"], key=repr)
            answers[f"latency {by} {i}"] = answer
        if not every:
            continue
        answer = flow.flow(cursor, f)
        answer["edges"] = sorted(answer["edges"], key=repr)  # in the order the engine groups them: none is defined
        answers[f"flow {i}"] = answer
        answers[f"dead_letters {i}"] = event_life.dead_letters(cursor, f)
        answers[f"retries {i}"] = event_life.retried(cursor, f, 50)
        answers[f"clock_skew {i}"] = latency.clock_skew(cursor, f, 50)
        answers[f"slow_consumers {i}"] = slow_consumers.slow_consumers(cursor, f, 1, 1.0, 1.5, 1)
        answer = instrumentation.instrumentation(cursor, f, 15.0, NOW_NS)
        answer["bus_without_producer"]["examples"].sort()  # the newest first, events of one instant in any order
        answers[f"instrumentation {i}"] = answer
        answers[f"observed {i}"] = observed.observed(cursor, f)
    answers["traces error"] = traces.search(cursor, Filters(), True, 0.5, None, None, 5)
    for trace_id in trace_ids:
        answers[f"trace {trace_id}"] = traces.trace(cursor, trace_id)
    for event_id in event_ids:
        answers[f"event {event_id}"] = event_life.event(cursor, event_id)
    answers["broker"] = broker_stats.snapshot(cursor, None, None)
    answers["broker window"] = broker_stats.snapshot(cursor, 2_000_000, 3_000_000)
    answers["messages"] = queries.messages(cursor, 20)
    answers["malformed"] = queries.messages(cursor, 20, True)
    answers["counts"] = queries.counts(cursor)
    for f, source, partition, vantage in streams:
        answers[f"sequences {vantage} {source} {partition}"] = sequences.sequences(
            cursor, f, source, partition, vantage, 50
        )
    return answers


RELATIVE = 1e-12
"""How far two interpolated percentiles may differ: the engines round the interpolation's last bit apart."""


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=RELATIVE, abs=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


def _first_difference(a, b, at: str = ""):
    """Where two answers first differ, and the two values there."""
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return next((_first_difference(a[k], b[k], f"{at}.{k}") for k in a if not _same(a[k], b[k])), None)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next((_first_difference(x, y, f"{at}[{i}]") for i, (x, y) in enumerate(zip(a, b)) if not _same(x, y)))
    return at, a, b


def _differences(expected: dict, actual: dict) -> list[str]:
    return [name for name in expected if not _same(expected[name], actual.get(name))]


@settings(
    max_examples=1, deadline=None, derandomize=True, phases=(Phase.generate,), suppress_health_check=list(HealthCheck)
)
@given(
    pairing=st.lists(pairing_spans(), min_size=4, max_size=6),
    streams=st.lists(stream_observations, min_size=2, max_size=3),
)
def test_every_endpoint_answers_the_same_on_clickhouse(clickhouse, pairing, streams):
    span_rows, bus_rows = [], []
    for draw, rows in enumerate(pairing):
        span_rows += _renamed(rows, draw)
    for draw, per_stream in enumerate(streams):
        spans, bus = _stream_rows(per_stream, draw)
        span_rows += spans
        bus_rows += bus
    store = Store(":memory:")
    try:
        store.write("otel_traces", span_rows)
        store.write("bus_messages", bus_rows)
        for table, rows in _broker_rows(len(streams) + 2).items():
            store.write(table, rows)
        duck = store.reader()
        _copy(duck, clickhouse)
        trace_ids = sorted({row[1] for row in span_rows})[:6]
        event_ids = sorted({row[SPAN_COLUMNS.index("MsgMessageId")] for row in span_rows} - {None})[:6]
        expected = _answers(duck, trace_ids, event_ids)
        duck.close()
    finally:
        store.close()
    assert expected["broker"]["latest"] and expected["report 0"]["streams"] and expected["latency channel 0"]["summary"]
    assert materialized_ctes(clickhouse)  # chdb's engine computes a CTE once: the readers' way is compared
    actual = _answers(ClickHouseReader(clickhouse, materialized=True), trace_ids, event_ids)
    differing = _differences(expected, actual)
    print(f"parity: {len(expected)} answers compared, {len(differing)} differ: {differing}")
    assert differing == [], [_first_difference(expected[name], actual.get(name)) for name in differing[:3]]


assert BUS_COLUMNS  # the bus rows are built for this column order
