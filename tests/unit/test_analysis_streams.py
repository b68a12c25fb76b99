"""The SQL report equals the Python reference (collectors/analyses/streams.py) on many generated streams."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.analyses import report
from collectors.analyses.filters import Filters
from collectors.analyses.streams import count_stream
from collectors.ingest.otlp import SPAN_COLUMNS
from collectors.storage import pairing
from collectors.storage.schema import BUS_COLUMNS, SCHEMA

SPAN_DEFAULTS = {
    "TraceId": "0" * 32,
    "ParentSpanId": "",
    "TraceState": "",
    "SpanName": "process",
    "SpanKind": "Consumer",
    "ServiceName": "svc",
    "ResourceAttributes": "{}",
    "ScopeName": "",
    "ScopeVersion": "",
    "SpanAttributes": "{}",
    "Duration": 1_000_000,
    "StatusCode": "Unset",
    "StatusMessage": "",
    "Events": "[]",
    "Links": "[]",
}


def span_row(**values) -> tuple:
    """A full otel_traces row: the given columns, defaults for the required rest, NULL otherwise."""
    merged = {**SPAN_DEFAULTS, **values}
    return tuple(merged.get(column) for column in SPAN_COLUMNS)


def bus_row(**values) -> tuple:
    """A full bus_messages row for a valid message."""
    merged = {"Pattern": "*", "Size": 10, "Valid": True, "Payload": "{}", **values}
    return tuple(merged.get(column) for column in BUS_COLUMNS)


def store(spans: list[tuple] = (), bus: list[tuple] = ()) -> duckdb.DuckDBPyConnection:
    """An in-memory store with the real schema holding the given rows."""
    conn = duckdb.connect()
    conn.execute(SCHEMA)
    if spans:
        conn.executemany(f"INSERT INTO otel_traces VALUES ({', '.join('?' * len(SPAN_COLUMNS))})", list(spans))
    if bus:
        conn.executemany(f"INSERT INTO bus_messages VALUES ({', '.join('?' * len(BUS_COLUMNS))})", list(bus))
    pairing.rebuild(conn)
    return conn


observation = st.tuples(
    st.integers(0, 7),  # event id
    st.one_of(st.none(), st.integers(-1, 12)),  # sequence; a negative one takes the exact path
    st.integers(0, 30),  # time: ties happen and are broken by arrival order / span id
    st.sampled_from([None, "processed", "processed", "duplicate_skipped", "failed", "retried"]),
    st.sampled_from([None, None, True]),  # the instrumentation marks the delivery redelivered
    st.sampled_from([None, None, 1, 2]),  # the published message (producer context) a RabbitMQ delivery carries
)
stream_key = st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["/s1", "/s2"]), st.sampled_from([None, "p0"]))
streams = st.dictionaries(stream_key, st.lists(observation, min_size=1, max_size=25), min_size=1, max_size=4)


def _origin(stream: tuple, n: int | None) -> str | None:
    """One published message per stream and number: a producer span is of one stream."""
    return None if n is None else f"{'/'.join(map(str, stream))}-o{n}"


def expected(per_stream: dict, vantage: str, now_ns: int, grace_ns: int, consumer: bool) -> dict:
    result = {}
    for (channel, source, pk), rows in per_stream.items():
        ordered = [
            (f"e{e}", s, t, o, r, _origin((channel, source, pk), n)) if consumer else (f"e{e}", s, t)
            for e, s, t, o, r, n in rows
        ]
        counts = count_stream(sorted(ordered, key=lambda r: r[2]), now_ns, grace_ns)
        entry = {
            "vantage": vantage,
            "channel": channel,
            "source": source,
            "partitionkey": pk,
            "received": counts.received,
            "duplicates": counts.duplicates,
            "out_of_order": counts.out_of_order,
            "missing": counts.missing,
            "gaps": counts.gaps,
            "lost": counts.lost,
            "lost_gaps": counts.lost_gaps,
        }
        if consumer:
            entry["redeliveries"] = counts.redeliveries
            entry["duplicates_handled"] = counts.duplicates_handled
            entry["duplicates_processed"] = counts.duplicates_processed
        result[(vantage, channel, source, pk)] = entry
    return result


def actual(conn, now_ns: int, grace_ns: int) -> dict:
    entries = report.streams(conn, Filters(), grace_ns / 1e9, now_ns)
    return {(e["vantage"], e["channel"], e["source"], e["partitionkey"]): e for e in entries}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(per_stream=streams, now_ns=st.integers(0, 40), grace_ns=st.integers(0, 10))
def test_bus_report_in_sql_equals_the_python_reference(per_stream, now_ns, grace_ns):
    # Python's sort is stable: arrival order (ArrivalSeq) breaks ties in time, as in the SQL.
    rows, arrival = [], 0
    for (channel, source, pk), observations in per_stream.items():
        for event, sequence, t, _, _, _ in observations:
            arrival += 1
            rows.append(
                bus_row(
                    ArrivalNs=t,
                    ArrivalSeq=arrival,
                    Channel=channel,
                    EventId=f"e{event}",
                    Source=source,
                    Sequence=sequence,
                    PartitionKey=pk,
                    Type="t",
                )
            )
    assert actual(store(bus=rows), now_ns, grace_ns) == expected(per_stream, "bus", now_ns, grace_ns, False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(per_stream=streams, now_ns=st.integers(0, 40), grace_ns=st.integers(0, 10))
def test_consumer_report_in_sql_equals_the_python_reference(per_stream, now_ns, grace_ns):
    rows, order = [], 0
    for (channel, source, pk), observations in per_stream.items():
        for event, sequence, t, outcome, redelivered, origin in observations:
            order += 1  # span ids grow with arrival, so they break ties in time like arrival order
            carried = {}
            if origin is not None:  # the parent is the producer context; services differ, so no span is a twin
                carried = {"MsgSystem": "rabbitmq", "ParentSpanId": _origin((channel, source, pk), origin)}
            rows.append(
                span_row(
                    ServiceName=f"svc{order}",
                    **carried,
                    Timestamp=t,
                    SpanId=f"{order:016x}",
                    MsgDestination=channel,
                    MsgMessageId=f"e{event}",
                    MsgConsumerGroup="g1",
                    CeSource=source,
                    Sequence=sequence,
                    PartitionKey=pk,
                    Outcome=outcome,
                    Redelivered=redelivered,
                )
            )
    assert actual(store(spans=rows), now_ns, grace_ns) == expected(per_stream, "g1", now_ns, grace_ns, True)


def test_documented_example_and_lost_gap():
    # sequences 1, 2, 4, 3, 5, 5, 7 at t = 0..6: the gap [6, 6] is lost once 7 is older than the grace window
    rows = [
        bus_row(ArrivalNs=i, ArrivalSeq=i, Channel="c", EventId=f"e{s}", Source="/s", Sequence=s)
        for i, s in enumerate((1, 2, 4, 3, 5, 5, 7))
    ]
    conn = store(bus=rows)
    (fresh,) = report.streams(conn, Filters(), grace_s=1e-9 * 5, now_ns=10)
    (old,) = report.streams(conn, Filters(), grace_s=1e-9 * 3, now_ns=10)
    assert (fresh["received"], fresh["duplicates"], fresh["out_of_order"], fresh["missing"]) == (7, 1, 1, 1)
    assert (fresh["gaps"], fresh["lost"], fresh["lost_gaps"]) == ([[6, 6]], 0, [])
    assert (old["lost"], old["lost_gaps"]) == (1, [[6, 6]])


@pytest.mark.parametrize(
    "filters,vantages",
    [
        (Filters(), {"bus", "g1", "g2"}),
        (Filters(group="g2"), {"g2"}),
        (Filters(channel="other"), set()),
        (Filters(since_ns=5), {"bus", "g2"}),
        (Filters(type="t"), {"bus", "g1", "g2"}),
        (Filters(service="producer"), {"bus"}),
    ],
)
def test_common_filters_narrow_the_report(filters, vantages):
    conn = store(
        spans=[
            span_row(Timestamp=1, SpanId="a" * 16, MsgDestination="c", MsgMessageId="e1", MsgConsumerGroup="g1"),
            span_row(Timestamp=6, SpanId="b" * 16, MsgDestination="c", MsgMessageId="e1", MsgConsumerGroup="g2"),
            span_row(Timestamp=0, SpanId="c" * 16, SpanKind="Producer", ServiceName="producer", MsgMessageId="e1"),
        ],
        bus=[bus_row(ArrivalNs=5, ArrivalSeq=1, Channel="c", EventId="e1", Source="/s", Sequence=1, Type="t")],
    )
    assert {e["vantage"] for e in report.streams(conn, filters)} == vantages


def test_exact_stream_key_answers_like_the_hashed_one():
    rows = [
        bus_row(ArrivalNs=i, ArrivalSeq=i, Channel="c", EventId=f"e{s}", Source=source, Sequence=s)
        for source in (None, "/x")
        for i, s in enumerate((1, 2, 4, 3, 5, 5, 7))
    ]
    conn = store(bus=rows)
    values = {**Filters().values(), "lost_before": 100}
    hashed, exact = (report._QUERIES[variant][0] for variant in (False, True))
    assert hashed != exact
    assert (
        conn.execute(hashed, report.bind(hashed, values)).fetchall()
        == conn.execute(exact, report.bind(exact, values)).fetchall()
    )


def test_high_sequences_of_one_stream_never_leak_into_the_next():
    # One running maximum covers every stream in hash order; a stream with huge sequence numbers must
    # not make the in-order stream after it look out of order.
    names = [f"/s{i}" for i in range(8)]
    rows = [bus_row(ArrivalNs=0, ArrivalSeq=1, Channel="c", EventId="big", Source=names[0], Sequence=2**62)]
    rows += [
        bus_row(ArrivalNs=s, ArrivalSeq=10 * i + s, Channel="c", EventId=f"{name}-{s}", Source=name, Sequence=s)
        for i, name in enumerate(names[1:], start=1)
        for s in (1, 2, 3)
    ]
    conn = store(bus=rows)
    hashes = dict(
        conn.execute("SELECT Source, hash('bus', Channel, Source, PartitionKey) FROM bus_messages").fetchall()
    )
    assert any(hashes[name] > hashes[names[0]] for name in names[1:]), "some stream sorts after the big one"
    entries = report.streams(conn, Filters())
    assert [(e["source"], e["out_of_order"], e["missing"]) for e in entries] == [(n, 0, 0) for n in names]


def test_a_delivery_after_a_failed_or_retried_one_is_a_redelivery_not_a_duplicate():
    # e1: failed, then processed (redelivered); e2: processed twice (a duplicate that got through);
    # e3: retried, retried, processed (two redeliveries); e4: marked redelivered by the instrumentation, alone
    sightings = [("e1", "failed", None), ("e2", "processed", None), ("e1", "processed", None),
                 ("e2", "processed", None), ("e3", "retried", None), ("e3", "retried", None),
                 ("e3", "processed", None), ("e4", "processed", True)]  # fmt: skip
    conn = store(
        spans=[
            span_row(Timestamp=i, SpanId=f"{i + 1:016x}", MsgDestination="c", MsgMessageId=e, MsgConsumerGroup="g",
                     CeSource="/s", CeType="t", PartitionKey="p", Outcome=o, Redelivered=r)
            for i, (e, o, r) in enumerate(sightings)
        ]
    )  # fmt: skip
    (entry,) = report.streams(conn, Filters())
    reference = count_stream([(e, None, i, o, r) for i, (e, o, r) in enumerate(sightings)])
    assert (entry["received"], entry["duplicates"], entry["redeliveries"], entry["duplicates_processed"]) == (
        8,
        1,
        4,
        1,
    )
    assert (reference.duplicates, reference.redeliveries, reference.duplicates_processed) == (1, 4, 1)
    assert report.report(conn)["totals"]["redeliveries"] == 4
