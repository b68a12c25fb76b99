"""The Contracts page's pure parts: the findings table, the kinds found, and each exchange's verdict."""

from __future__ import annotations

import pytest

from dashboard.views import contracts_transforms as page

REGISTRY = {"accepts": {"inventory": {"shop.order.placed": [2]}}}


def test_findings_frame_keeps_the_collectors_order_and_names_kinds():
    answer = {
        "findings": [
            {"kind": "unknown_type", "type": "x", "version": None, "who": ["a", "b"], "channels": ["c"], "count": 2,
             "example_event_id": "e", "detail": "x has no schema"},
            {"kind": "brand_new_kind", "type": None, "version": 3, "who": [], "channels": [], "count": 1,
             "example_event_id": None, "detail": "d"},
        ]
    }  # fmt: skip
    frame = page.findings_frame(answer)
    assert list(frame.columns) == page.FINDING_COLUMNS
    assert list(frame["finding"]) == ["Unknown type", "brand_new_kind"]
    assert list(frame["who"]) == ["a, b", ""] and frame["version"].iloc[1] == 3


def test_an_empty_answer_gives_empty_frames():
    assert page.findings_frame({}).empty and page.exchanges_frame({}, None).empty and page.kinds_found({}) == []


def test_kinds_found_lists_only_kinds_with_findings():
    assert page.kinds_found({"counts": {"unknown_type": 2, "unconsumed": 0}}) == [("Unknown type", 2)]


@pytest.mark.parametrize(
    ("registry", "group", "version", "expected"),
    [
        (REGISTRY, "inventory", 2, "accepted"),
        (REGISTRY, "inventory", None, "accepted"),
        (REGISTRY, "inventory", 1, "accepts only 2"),
        (REGISTRY, "billing", 2, "undeclared group"),
        ({"accepts": {"inventory": {}}}, "inventory", 2, "type not declared"),
        (None, "inventory", 2, "no registry"),
    ],
)
def test_each_receiving_group_gets_its_verdict(registry, group, version, expected):
    observed = {
        "publications": [{"producer": None, "channel": "c", "type": "shop.order.placed", "version": 2, "count": 4}],
        "deliveries": [{"group": group, "channel": "c", "type": "shop.order.placed", "version": version, "count": 3}],
    }
    frame = page.exchanges_frame(observed, registry)
    assert sorted(frame["role"]) == ["receives", "sends"]
    received = frame[frame["role"] == "receives"].iloc[0]
    assert received["contract"] == expected and received["count"] == 3
    assert frame[frame["role"] == "sends"].iloc[0]["who"] == page.NO_PRODUCER


def test_sends_of_one_type_and_version_are_one_row_naming_every_producer():
    sent = [
        {"producer": "orders", "channel": "c", "type": "t", "version": 2, "count": 5},
        {"producer": None, "channel": "c", "type": "t", "version": 2, "count": 1},
        {"producer": "orders-legacy", "channel": "c", "type": "t", "version": 2, "count": 2},
        {"producer": "orders-legacy", "channel": "c", "type": "t", "version": 1, "count": 3},
    ]
    frame = page.exchanges_frame({"publications": sent}, None)
    assert list(zip(frame["who"], frame["version"], frame["count"], strict=True)) == [
        ("orders-legacy", 1, 3),
        ("orders, orders-legacy", 2, 8),
    ]
