"""The write path's shortcuts store exactly what the plain way would: the JSON text of every JSON column, byte
for byte, and the same rows."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collectors.ingest.otlp import SPAN_COLUMNS, to_json, trace_rows
from collectors.storage.store import Store

PLAIN = json.JSONEncoder(default=str, allow_nan=False)

VALUES = [
    {},
    [],
    "",
    "plain",
    'quote " backslash \\ newline \n tab \t',
    "é ü 中文 🚀 \x00 \u2028",
    0,
    -1,
    2**63,
    -(2**80),
    1.5,
    1e300,
    -0.0,
    True,
    False,
    None,
    b"bytes go through str()",
    {"k": "v", "n": 1, "f": 2.25, "b": False, "none": None, "list": [1, "two", [3.0]], "map": {"deep": {"er": []}}},
    [{"TraceId": "ab" * 16, "SpanId": "cd" * 8, "TraceState": "", "Attributes": {}}],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_to_json_writes_what_the_standard_encoder_writes(value):
    assert to_json(value) == PLAIN.encode(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (math.nan, '"NaN"'),
        ({"a": [math.inf, 1.0]}, '{"a": ["Infinity", 1.0]}'),
        ([-math.inf], '["-Infinity"]'),
    ],
)
def test_non_finite_doubles_become_strings(value, text):
    assert to_json(value) == text


def test_to_json_after_a_non_finite_value_is_still_right():
    to_json({"x": [math.nan]})  # the fallback must leave no state behind in the shared encoder
    shared = [1]
    assert to_json({"a": shared, "b": shared}) == '{"a": [1], "b": [1]}'


def _kv(key: str, **value) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def _request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend([_kv("service.name", string_value="ünïcode svc")])
    scope = resource_spans.scope_spans.add()
    for index in range(3):
        span = scope.spans.add(
            trace_id=bytes([index + 1]) * 16,
            span_id=bytes([index + 1]) * 8,
            name=f"process 𝄞 {index}",
            kind=Span.SPAN_KIND_CONSUMER,
            start_time_unix_nano=1_700_000_000_000_000_000 + index,
            end_time_unix_nano=1_700_000_000_000_000_900 + index,
        )
        span.attributes.extend(
            [
                _kv("messaging.system", string_value="redis"),
                _kv("text", string_value='"quoted" \\ \n é 🚀'),
                _kv("count", int_value=index),
                _kv("ratio", double_value=math.nan if index == 1 else 0.5),
                _kv("flag", bool_value=True),
            ]
        )
        event = span.events.add(time_unix_nano=1_700_000_000_000_000_500, name="retry")
        event.attributes.extend([_kv("eventscope.attempt", int_value=2)])
        link = span.links.add(trace_id=b"\x09" * 16, span_id=b"\x08" * 8, trace_state="k=v")
        link.attributes.extend([_kv("why", string_value="fan-in")])
    return request


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "store.duckdb"))
    yield store
    store.close()


def test_every_column_is_stored_as_decoded(store):
    decoded = trace_rows(_request())
    store.submit_tables({"otel_traces": decoded.rows, "span_links": decoded.links}).wait(30)
    cursor = store.cursor()
    try:
        columns = ", ".join(SPAN_COLUMNS)
        stored = cursor.execute(f"SELECT {columns} FROM otel_traces ORDER BY SpanId").fetchall()
        types = dict(
            cursor.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'otel_traces'"
            ).fetchall()
        )
    finally:
        cursor.close()
    assert stored == sorted(decoded.rows, key=lambda row: row[2])
    assert [types[name] for name in ("ResourceAttributes", "SpanAttributes", "Events", "Links")] == ["JSON"] * 4


class _RecordingStore(Store):
    """A store that remembers how many batches each group commit held, with a long window for announced ones."""

    GATHER_COMING_S = 30.0

    def __init__(self, path: str):
        self.groups: list[int] = []
        super().__init__(path)

    def _commit(self, cursor, jobs) -> None:
        self.groups.append(len(jobs))
        super()._commit(cursor, jobs)


def _span_rows(first: int, count: int) -> list[tuple]:
    request = _request()
    for index, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
        span.span_id = (first + index + 1).to_bytes(8, "big")
        span.ClearField("links")
    return trace_rows(request).rows[:count]


@pytest.fixture
def recording(tmp_path):
    store = _RecordingStore(str(tmp_path / "store.duckdb"))
    yield store
    store.close()


def test_a_batch_announced_as_coming_shares_the_commit_of_the_one_before(recording):
    announced, release = threading.Event(), threading.Event()
    jobs = []

    def decode_then_submit() -> None:
        with recording.coming():
            announced.set()
            release.wait(10)
            jobs.append(recording.submit_tables({"otel_traces": _span_rows(100, 2)}))

    sender = threading.Thread(target=decode_then_submit)
    sender.start()
    announced.wait(10)
    first = recording.submit_tables({"otel_traces": _span_rows(0, 2)})
    time.sleep(0.1)  # far past GATHER_S: without the announcement the first batch would be committed alone
    release.set()
    sender.join(10)
    assert first.wait(10) and jobs[0].wait(10)
    assert recording.groups == [2]


def test_an_announced_batch_that_never_comes_does_not_hold_the_commit(recording):
    with recording.coming():
        job = recording.submit_tables({"otel_traces": _span_rows(0, 1)})
    assert job.wait(10)  # the window is 30 s: leaving the block ends the wait
    assert recording.groups == [1]


@pytest.mark.parametrize(
    "trace_state,attribute",
    [("", None), ("k=v", None), ("", "fan-in"), ('"odd" \\ state', "x")],
    ids=["plain", "trace state", "attributes", "both"],
)
def test_links_json_is_the_encoders_text_for_plain_and_other_links(trace_state, attribute):
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    span.links.add(trace_id=b"\x03" * 16, span_id=b"\x04" * 8)  # a plain one first, the kind under test after it
    link = span.links.add(trace_id=b"\x05" * 16, span_id=b"\x06" * 8, trace_state=trace_state)
    if attribute:
        link.attributes.extend([_kv("why", string_value=attribute)])
    (row,) = trace_rows(request).rows
    expected = [
        {"TraceId": "03" * 16, "SpanId": "04" * 8, "TraceState": "", "Attributes": {}},
        {"TraceId": "05" * 16, "SpanId": "06" * 8, "TraceState": trace_state, "Attributes": {"why": attribute}},
    ]
    if not attribute:
        expected[1]["Attributes"] = {}
    assert row[SPAN_COLUMNS.index("Links")] == to_json(expected) == json.dumps(expected)
