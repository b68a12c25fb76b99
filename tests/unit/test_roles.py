"""Which spans publish and which deliver (collectors/analyses/roles.py), over a small in-memory store.

botocore records SQS calls as CLIENT spans: a SendMessage is a publish, a ReceiveMessage that names a
message is a receipt (the delivery of that message, outcome ``received``), and an SQS message received
again by the same group on the same queue is a redelivery, never a duplicate. CLIENT spans of other
systems, and other CLIENT spans, are neither.
"""

from __future__ import annotations

import duckdb
import pytest

from collectors.analyses import duplicates, event_life, report
from collectors.analyses.deliveries import DELIVERIES, PUBLISHES
from collectors.analyses.filters import Filters, bind
from collectors.ingest.otlp import SPAN_COLUMNS
from collectors.storage import pairing
from collectors.storage.store import SCHEMA

MS = 1_000_000


def _span(span: str, kind: str, t_ms: int, **fields) -> tuple:
    row = {"Timestamp": t_ms * MS, "TraceId": f"t-{span}", "SpanId": span, "ParentSpanId": "", "TraceState": "",
           "SpanName": "SQS.Call", "SpanKind": kind, "ServiceName": "billing", "ResourceAttributes": "{}",
           "ScopeName": "t", "ScopeVersion": "", "SpanAttributes": "{}", "Duration": 2 * MS, "StatusCode": "Unset",
           "StatusMessage": "", "Events": "[]", "Links": "[]", "MsgSystem": "aws_sqs", "MsgDestination": "invoices",
           **fields}  # fmt: skip
    return tuple(row.get(column) for column in SPAN_COLUMNS)


def _send(span: str, t_ms: int, message: str, **fields) -> tuple:
    return _span(span, "Client", t_ms, MsgOperation="send", MsgMessageId=message, **fields)


def _receipt(span: str, t_ms: int, message: str | None, **fields) -> tuple:
    fields = {"ServiceName": "archiver", **fields}
    return _span(span, "Client", t_ms, MsgOperation="receive", MsgMessageId=message, **fields)


@pytest.fixture
def store():
    conn = duckdb.connect()
    conn.execute(SCHEMA)
    rows = [
        _send("s1", 0, "m1"),
        _send("s2", 1, "m2"),
        _receipt("r1", 10, "m1"),
        _receipt("r2", 11, "m2"),
        _receipt("r3", 12, None),  # an empty receive: no message, no delivery
        _receipt("r4", 30, "m1"),  # not deleted in time: handed out again
        _receipt("r5", 31, "m1", ServiceName="auditor"),  # another group's first receipt
        _receipt("r6", 40, "m1", MsgDestination="invoices-dlq"),  # moved by the redrive policy
        _receipt("r7", 50, "m2", StatusCode="Error"),  # a receipt in error, and a redelivery
        _span("k1", "Client", 13, MsgSystem="kafka", MsgOperation="receive", MsgMessageId="m1"),  # not a receipt
        _span("x1", "Client", 14, MsgSystem=None, MsgDestination=None),  # a database call
        _span("b1", "Client", 15, MsgSystem="servicebus", MsgOperation="send"),  # a batch's transport: not a publish
    ]
    conn.executemany(f"INSERT INTO otel_traces VALUES ({', '.join('?' * len(SPAN_COLUMNS))})", rows)
    pairing.rebuild(conn)
    yield conn
    conn.close()


def test_sends_are_publishes_and_receipts_naming_a_message_are_deliveries(store):
    assert sorted(row[0] for row in store.execute(f"SELECT SpanId FROM ({PUBLISHES})").fetchall()) == ["s1", "s2"]
    store.execute(DELIVERIES, bind(DELIVERIES, Filters().values()))
    names = [d[0] for d in store.description]
    found = {row[1]: dict(zip(names, row, strict=True)) for row in store.fetchall()}
    assert sorted(found) == ["r1", "r2", "r4", "r5", "r6", "r7"]
    assert {k: (d["paired_by"], d["producer_span"]) for k, d in found.items() if d["channel"] == "invoices"} == {
        "r1": ("message_id", "s1"), "r2": ("message_id", "s2"), "r4": ("message_id", "s1"),
        "r5": ("message_id", "s1"), "r7": ("message_id", "s2"),
    }  # fmt: skip
    assert {k: d["outcome"] for k, d in found.items()} == {
        "r1": "received", "r2": "received", "r4": "received", "r5": "received", "r6": "received", "r7": "failed",
    }  # fmt: skip


def test_a_message_received_again_by_the_same_group_on_the_same_queue_is_a_redelivery(store):
    streams = report.streams(store, Filters(), 5.0, 10**18)
    counts = {(s["vantage"], s["channel"]): (s["received"], s["duplicates"], s["redeliveries"]) for s in streams}
    assert counts == {
        ("archiver", "invoices"): (4, 0, 2),
        ("archiver", "invoices-dlq"): (1, 0, 0),
        ("auditor", "invoices"): (1, 0, 0),
    }
    assert all(s["duplicates_processed"] == 0 for s in streams if s["vantage"] != "bus")
    found = duplicates.duplicates(store, Filters())["duplicates"]
    assert [(d["vantage"], d["event_id"], d["copies"], d["redeliveries"]) for d in found] == [
        ("archiver", "m1", 2, 1),
        ("archiver", "m2", 2, 1),
    ]


def test_redeliveries_count_the_earlier_receipts_as_attempts(store):
    retried = event_life.retried(store, Filters(), 10)["retried"]
    assert {(r["event_id"], r["kind"], r["attempts"], r["failed_attempts"]) for r in retried} == {
        ("m1", "redelivery", 2, 1),
        ("m2", "redelivery", 2, 2),
    }
