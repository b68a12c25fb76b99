"""What the shop's bus reads from a delivery: the CloudEvent with its data, or the reason it is not one."""

from __future__ import annotations

import pytest

from eventscope_redis import Incoming
from sample_system.bus import InvalidEvent, event_of

GOOD = {"specversion": "1.0", "id": "e1", "source": "/sample/orders/1", "type": "shop.order.placed", "sequence": "3"}


def _incoming(attributes: dict | None, payload: bytes | str = b'{"order_id": "o-1"}') -> Incoming:
    return Incoming("shop.orders", None, "inventory", attributes, payload, payload)


def test_a_delivery_becomes_its_event_with_the_data_decoded():
    assert event_of(_incoming(GOOD)) == {**GOOD, "data": {"order_id": "o-1"}}
    assert event_of(_incoming(GOOD, '"text"'))["data"] == "text"


@pytest.mark.parametrize(
    "attributes,payload,reason",
    [
        (None, b'{"order_id": "o-1"}', "not a CloudEvent"),
        ({**GOOD, "id": ""}, b"{}", "missing or empty required attribute"),
        ({k: v for k, v in GOOD.items() if k != "source"}, b"{}", "source"),
        ({**GOOD, "type": 7}, b"{}", "type"),
        ({**GOOD, "sequence": "-1"}, b"{}", "sequence must be a decimal integer string"),
        ({**GOOD, "sequence": "1e3"}, b"{}", "sequence"),
        (GOOD, b"\xff\xfe", "data is not JSON"),
        (GOOD, b"{", "data is not JSON"),
        (GOOD, b"", "data is not JSON"),
        (GOOD, b"[" * 100_000, "data is not JSON"),
    ],
)
def test_garbage_is_refused_with_its_reason(attributes, payload, reason):
    with pytest.raises(InvalidEvent, match=reason):
        event_of(_incoming(attributes, payload))
