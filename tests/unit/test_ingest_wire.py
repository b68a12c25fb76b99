"""Span attributes read from their encoded bytes give exactly the rows the stock message gives, garbage included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from collectors.ingest import otlp, wire
from collectors.ingest.otlp import SPAN_COLUMNS, OtlpDecodeError, decode_traces, trace_rows
from collectors.ingest.receiver import TRACES
from tests.unit.test_ingest_decode import otlp_json

ATTRIBUTES = SPAN_COLUMNS.index("SpanAttributes")


def _request(*attribute_lists: list[KeyValue]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for index, attributes in enumerate(attribute_lists, start=1):
        span = scope.spans.add(trace_id=b"\x01" * 16, span_id=index.to_bytes(8, "big"), name=f"s{index}")
        span.attributes.extend(attributes)
    return request


def _both(request: ExportTraceServiceRequest) -> tuple[list[tuple], list[tuple]]:
    body = request.SerializeToString()
    return trace_rows(request).rows, trace_rows(wire.ExportTraceServiceRequest.FromString(body)).rows


def _kv(key: str, **value) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


UNUSUAL = [
    _kv("messaging.system", string_value="redis"),
    _kv("empty", string_value=""),
    _kv("unset"),
    KeyValue(key="no value at all"),
    KeyValue(value=AnyValue(string_value="no key")),
    _kv("eventscope.sequence", int_value=-7),
    _kv("big", int_value=2**63 - 1),
    _kv("ratio", double_value=0.25),
    _kv("nan", double_value=float("nan")),
    _kv("flag", bool_value=True),
    _kv("false", bool_value=False),
    _kv("raw", bytes_value=b"\x00\xff"),
    _kv("list", array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(string_value="two")])),
    _kv("map", kvlist_value=KeyValueList(values=[_kv("inner", string_value="x")])),
    _kv("k" * 200, string_value="a key longer than one length byte"),
    _kv("long", string_value="v" * 300),
    _kv("unicode ключ", string_value="значение ✓"),
    _kv('"quoted" \\ \n key', string_value='"quoted" \\ \n é 🚀 \x00'),
    _kv("messaging.system", string_value="kafka"),  # a repeated key: the last one wins, as in a dict
]


def test_every_kind_of_value_reads_as_the_stock_message_reads_it():
    stock, read = _both(_request(UNUSUAL, UNUSUAL[::-1], []))
    assert read == stock
    assert read[0][SPAN_COLUMNS.index("MsgSystem")] == "kafka"


def test_an_attribute_read_once_is_read_the_same_from_memory():
    first = _both(_request(UNUSUAL))[1]
    assert _both(_request(UNUSUAL))[1] == first


def test_a_full_memory_starts_again(monkeypatch):
    monkeypatch.setattr(otlp, "MAX_KNOWN_ATTRIBUTES", 2)
    monkeypatch.setattr(otlp, "_KNOWN", {})
    stock, read = _both(_request(UNUSUAL, UNUSUAL))
    assert read == stock
    assert len(otlp._KNOWN) <= 2


def test_extra_fields_inside_an_attribute_are_ignored_as_the_stock_message_ignores_them():
    encoded = _kv("a", string_value="b").SerializeToString() + b"\x18\x05"  # an unknown field 3 = 5
    body = _request([]).SerializeToString()
    wired = wire.ExportTraceServiceRequest.FromString(body)
    wired.resource_spans[0].scope_spans[0].spans[0].attributes.append(encoded)
    stock = ExportTraceServiceRequest.FromString(wired.SerializeToString())
    assert trace_rows(wired).rows == trace_rows(stock).rows


@pytest.mark.parametrize(
    "encoded",
    [
        b"\x0a\x01\xff\x12\x03\x0a\x01a",  # a key that is not UTF-8
        b"\x0a\x01a\x12\x03\x0a\x01\xff",  # a string value that is not UTF-8
        b"\x0a\x05ab",  # a key cut short
        b"\x12\x09\x0a\x07",  # a value cut short
    ],
    ids=["key not utf-8", "value not utf-8", "short key", "short value"],
)
def test_an_attribute_that_is_not_a_key_value_makes_the_body_undecodable(encoded):
    wired = wire.ExportTraceServiceRequest.FromString(_request([]).SerializeToString())
    wired.resource_spans[0].scope_spans[0].spans[0].attributes.append(encoded)
    body = wired.SerializeToString()
    with pytest.raises(OtlpDecodeError, match="span attribute"):
        TRACES.decode(otlp.parse_request(body, False, TRACES.request_type))
    with pytest.raises(OtlpDecodeError):  # the stock message refuses it as well
        decode_traces(body, False)


def test_the_receiver_reads_protobuf_and_json_into_the_wire_form():
    request = _request(UNUSUAL)
    from_protobuf = otlp.parse_request(request.SerializeToString(), False, TRACES.request_type)
    from_json = otlp.parse_request(otlp_json(request), True, TRACES.request_type)
    assert isinstance(from_protobuf, wire.ExportTraceServiceRequest)
    assert isinstance(from_json, wire.ExportTraceServiceRequest)
    assert trace_rows(from_protobuf).rows == trace_rows(from_json).rows == trace_rows(request).rows


_values = st.one_of(
    st.text(max_size=140).map(lambda text: {"string_value": text}),
    st.integers(-(2**63), 2**63 - 1).map(lambda number: {"int_value": number}),
    st.booleans().map(lambda flag: {"bool_value": flag}),
    st.floats(allow_nan=False).map(lambda number: {"double_value": number}),
    st.just({}),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.text(max_size=140), _values), max_size=8), min_size=1, max_size=4))
def test_any_attributes_read_as_the_stock_message_reads_them(spans):
    stock, read = _both(_request(*[[_kv(key, **value) for key, value in span] for span in spans]))
    assert read == stock
