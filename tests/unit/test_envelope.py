"""The CloudEvent envelope: built by the sample system, parsed (or rejected) by the collectors."""

from __future__ import annotations

import json
import uuid

import pytest

from collectors.cloudevents import MalformedEvent, Unenveloped, parse_event
from sample_system import envelope


def test_build_follows_the_contract():
    event = envelope.build_event(
        source="/sample/orders/ab12", type="shop.order.placed", data={"x": 1}, sequence=7, partitionkey="p1"
    )
    assert event["specversion"] == "1.0"
    assert event["sequence"] == "7"
    assert event["partitionkey"] == "p1"
    assert event["time"].endswith("Z")
    assert uuid.UUID(event["id"]).version == 7


def test_uuid7_is_time_ordered():
    first, second = envelope.uuid7(), envelope.uuid7()
    assert first[:8] <= second[:8]


def test_collectors_parse_what_the_sample_builds():
    event = envelope.build_event(source="/s/1", type="t", data=None, sequence=3, subject="order-1")
    event["traceparent"] = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    parsed = parse_event(envelope.encode(event))
    assert (parsed.id, parsed.source, parsed.type, parsed.sequence, parsed.subject) == (
        event["id"],
        "/s/1",
        "t",
        3,
        "order-1",
    )
    assert parsed.partitionkey is None
    assert parsed.trace_id == "a" * 32


VALID = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}

NOT_ENVELOPED = [
    ("not json", b"\x00\xffnot json", "not JSON"),
    ("plain text", b"hello", "not JSON"),
    ("json array", b"[1, 2]", "not a JSON object"),
    ("json object without specversion", json.dumps({"id": "1", "order": 7}), "no specversion"),
]


@pytest.mark.parametrize("payload,reason", [r[1:] for r in NOT_ENVELOPED], ids=[r[0] for r in NOT_ENVELOPED])
def test_payloads_that_do_not_claim_to_be_cloudevents_are_unenveloped(payload, reason):
    with pytest.raises(Unenveloped) as info:
        parse_event(payload)
    assert reason in str(info.value)


REJECTED = [
    ("missing id", json.dumps({k: v for k, v in VALID.items() if k != "id"}), "missing required attribute(s): id"),
    ("missing several", json.dumps({"specversion": "1.0"}), "id, source, type"),
    ("empty source", json.dumps({**VALID, "source": ""}), "'source' must be a non-empty string"),
    ("id not a string", json.dumps({**VALID, "id": 5}), "'id' must be a non-empty string"),
    ("old specversion", json.dumps({**VALID, "specversion": "0.3"}), "unsupported specversion"),
    ("sequence not decimal", json.dumps({**VALID, "sequence": "abc"}), "'sequence' must be a decimal integer"),
    ("sequence negative", json.dumps({**VALID, "sequence": "-1"}), "'sequence' must be a decimal integer"),
    ("subject not a string", json.dumps({**VALID, "subject": 3}), "'subject' must be a string"),
]


@pytest.mark.parametrize("payload,reason", [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED])
def test_collectors_reject_with_a_reason(payload, reason):
    with pytest.raises(MalformedEvent, match=None) as info:
        parse_event(payload)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [b"", b"{", b"null", json.dumps({**VALID, "specversion": 1}).encode()],
    ids=["empty", "open", "null", "n"],
)
def test_sample_decode_rejects(payload):
    with pytest.raises(envelope.InvalidEnvelope):
        envelope.decode(payload)


def test_sample_decode_accepts_a_built_event():
    event = envelope.build_event(source="/s", type="t", data=[], sequence=1)
    assert envelope.decode(envelope.encode(event)) == event
