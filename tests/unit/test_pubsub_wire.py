"""The instrumentation library's wire form: every payload comes back byte for byte; garbage never crashes."""

from __future__ import annotations

import json

import pytest

from eventscope_redis import wire

ATTRIBUTES = {"specversion": "1.0", "id": "e-1", "source": "/app/1", "type": "t", "sequence": "1"}

PAYLOADS = [
    pytest.param(b'{"order_id": "o-1", "total": 12.5}', id="json object"),
    pytest.param(b'  {"a": [1, 2, {"b": null}]} \n', id="json with surrounding whitespace"),
    pytest.param(b"[1,2,3]", id="json array"),
    pytest.param(b'"a string"', id="json string"),
    pytest.param(b"42", id="json number"),
    pytest.param(b"true", id="json literal"),
    pytest.param(b"{}", id="empty object"),
    pytest.param(b"{ }", id="empty object with space"),
    pytest.param(b"hello world", id="plain text"),
    pytest.param("grüße \u2028 ✓".encode(), id="unicode text"),
    pytest.param(b"", id="empty"),
    pytest.param(b"NaN", id="NaN is text, not JSON"),
    pytest.param(b'{"a": NaN}', id="object with NaN is text"),
    pytest.param(b"\xff\x00\x01binary", id="binary"),
    pytest.param(b'{"data": 1, "wrappedby": "x"}', id="object using the envelope's names"),
    pytest.param(b'{"a": "\\",\\"wrappedby\\":\\"eventscope-redis\\""}', id="marker text inside a string"),
    pytest.param(b'{"a": {"b": 1}}', id="nested object"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested deeper than the parser goes"),
]


@pytest.mark.parametrize("mixed_fleet", [False, True], ids=["envelope", "mixed fleet"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_payload_comes_back_exactly(payload: bytes, mixed_fleet: bool):
    on_wire = wire.wrap(payload, dict(ATTRIBUTES), mixed_fleet)
    received = wire.unwrap(on_wire)
    assert received.wrapped
    assert received.payload == payload
    assert received.attributes["id"] == "e-1"
    assert wire.unwrap(on_wire.decode()).payload == payload.decode("utf-8", errors="replace")


@pytest.mark.parametrize("mixed_fleet", [False, True], ids=["envelope", "mixed fleet"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_wire_is_a_cloudevent_in_structured_json(payload: bytes, mixed_fleet: bool):
    event = json.loads(wire.wrap(payload, dict(ATTRIBUTES), mixed_fleet))
    assert isinstance(event, dict)
    assert {k: event[k] for k in ATTRIBUTES} == ATTRIBUTES
    assert event[wire.MARKER_KEY] == wire.MARKER


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b'{"order_id": "o-1"}', "mixed"),
        (b"{}", "mixed"),
        (b'{"id": "mine"}', "envelope"),
        (b"[1]", "envelope"),
        (b"text", "envelope"),
        (b'{"a": 1} ', "envelope"),
    ],
)
def test_mixed_fleet_adds_attributes_beside_object_keys_only(payload: bytes, expected: str):
    event = json.loads(wire.wrap(payload, dict(ATTRIBUTES), mixed_fleet=True))
    if expected == "mixed":
        assert "data" not in event
        assert json.loads(payload).items() <= event.items()
    else:
        assert "data" in event or "data_base64" in event


def test_attributes_come_first_and_a_json_payload_travels_verbatim_as_the_last_member():
    on_wire = wire.wrap(b'{"order_id": "o-1"}', dict(ATTRIBUTES))
    assert on_wire.startswith(b'{"specversion":"1.0","id":"e-1",')
    assert on_wire.endswith(b',"wrappedby":"eventscope-redis","data":{"order_id": "o-1"}}')
    assert json.loads(on_wire)["datacontenttype"] == wire.JSON_TYPE


GARBAGE = [
    b"",
    b"{",
    b'{"specversion":"1.0",',
    b'{"specversion":"1.0","wrappedby":"eventscope-redis","data":}',
    b'{"specversion":"1.0","wrappedby":"eventscope-redis","data_base64":"!!"}',
    b'{"specversion":"1.0","datacontenttype":"text/plain; charset=utf-8","wrappedby":"eventscope-redis","data":3}',
    b'{"specversion":"1.0","wrappedby":"someone-else","data":1}',
    b'{"specversion":"1.0",' + b'"x":[' * 1000 + b'"wrappedby":"eventscope-redis","data":1}',
    b'{"data":',
    b'{"data":1',
    b'{"data":1,',
    b'{"data":1,"wrappedby":"eventscope-redis"',
    b'{"data":1,"wrappedby":"someone-else"}',
    b'{"data_base64":"!!!","wrappedby":"eventscope-redis"}',
    b'{"data_base64":3,"wrappedby":"eventscope-redis"}',
    b'{"data":3,"datacontenttype":"text/plain; charset=utf-8","wrappedby":"eventscope-redis"}',
    b'{"a":1,"wrappedby":"eventscope-redis"',
    b'"wrappedby":"eventscope-redis"}',
    b'[1,"wrappedby":"eventscope-redis"}',
    b"\xff\xfe",
    b"null",
    b'{"specversion": "0.3", "id": "x"}',
    b'{"specversion": "1.0", "id": ',
    b"\x00" * 100,
    b"[" * 10000,
    b'{"data":' + b"[" * 100_000,
    b'{"specversion":"1.0",' + b'"x":[' * 100_000,
]


@pytest.mark.parametrize("payload", GARBAGE)
def test_garbage_reaches_the_application_unchanged(payload: bytes):
    received = wire.unwrap(payload)
    assert not received.wrapped
    assert received.payload == payload


@pytest.mark.parametrize("value", [None, 3, 1.5, object()])
def test_values_that_are_not_bytes_or_text_pass_through(value):
    assert wire.unwrap(value).payload is value


def test_a_cloudevent_from_another_producer_is_not_unwrapped_but_its_attributes_are_read():
    foreign = b'{"specversion":"1.0","id":"x-1","source":"/other","type":"t","data":{"a":1},"traceparent":"00-x"}'
    received = wire.unwrap(foreign)
    assert received.payload == foreign
    assert not received.wrapped
    assert received.attributes == {
        "specversion": "1.0",
        "id": "x-1",
        "source": "/other",
        "type": "t",
        "traceparent": "00-x",
    }


def test_uuid7_is_version_7_and_time_ordered():
    first, second = wire.uuid7(), wire.uuid7()
    assert first[14] == "7" and first[19] in "89ab"
    assert first[:13] <= second[:13]
