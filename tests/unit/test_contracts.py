"""The contract checks as plain data: a registry directory in, findings out (docs/contracts.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from collectors.contracts import asyncapi, findings, registry
from collectors.contracts.observed import version_of

ORDER_V1 = {"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "string", "minLength": 1}}}
ORDER_V2 = {**ORDER_V1, "required": ["order_id", "total"], "properties": {**ORDER_V1["properties"], "total": {}}}
SHIPPED = {"type": "object", "required": ["order_id"]}
DECLARATIONS = {
    "consumers": {
        "inventory": {"accepts": {"shop.order.placed": [2]}},
        "notifications": {"accepts": {"shop.order.shipped": [1]}},
    },
    "external": {"shop.account.opened": "read elsewhere"},
}


def write_registry(root: Path, declarations: object = DECLARATIONS, **extra: object) -> Path:
    files = {
        "shop.order.placed.v1.json": ORDER_V1,
        "shop.order.placed.v2.json": ORDER_V2,
        "shop.order.shipped.v1.json": SHIPPED,
        "shop.account.opened.v1.json": {"type": "object"},
        **extra,
    }
    for name, value in files.items():
        (root / name).write_text(value if isinstance(value, str) else json.dumps(value))
    if declarations is not None:
        text = declarations if isinstance(declarations, str) else json.dumps(declarations)
        (root / registry.DECLARATIONS_FILE).write_text(text)
    return root


@pytest.fixture
def shop_registry(tmp_path) -> registry.Registry:
    return registry.load(write_registry(tmp_path))


def sent(event_type, version, producer="orders", channel="shop.orders", count=1):
    row = {"channel": channel, "type": event_type, "version": version, "producer": producer, "count": count}
    return {**row, "example_event_id": "e1"}


def received(group, event_type, version, channel="shop.orders", count=1):
    row = {"group": group, "channel": channel, "type": event_type, "version": version, "count": count}
    return {**row, "example_event_id": "e1"}


def payload(event_type, version, data, channel="shop.orders"):
    return {"channel": channel, "type": event_type, "version": version, "data": data, "count": 1, "event_id": "e1"}


CLEAN = {
    "publications": [sent("shop.order.placed", 2), sent("shop.order.shipped", 1, "shipping", "shop.shipping")],
    "deliveries": [received("inventory", "shop.order.placed", 2)],
    "payloads": [payload("shop.order.placed", 2, '{"order_id": "o1", "total": 3}')],
}


def kinds(answer: list[dict]) -> list[tuple]:
    return [(f["kind"], f["type"], f["version"], tuple(f["who"])) for f in answer]


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        pytest.param(CLEAN, [], id="clean"),
        pytest.param({}, [], id="nothing observed"),
        pytest.param(
            {"publications": [sent("shop.mystery", 1)], "deliveries": [received("inventory", "shop.mystery", 1)]},
            [("unknown_type", "shop.mystery", None, ("inventory", "orders"))],
            id="an unknown type is one finding, not also unaccepted or unconsumed",
        ),
        pytest.param(
            {"publications": [sent("shop.order.placed", 7), sent("shop.order.placed", 7, "orders-legacy")]},
            [("unknown_version", "shop.order.placed", 7, ("orders", "orders-legacy"))],
            id="an unknown version",
        ),
        pytest.param(
            {"deliveries": [received("inventory", "shop.order.placed", 1, count=3)]},
            [("not_accepted", "shop.order.placed", 1, ("inventory",))],
            id="a version the group does not accept",
        ),
        pytest.param(
            {"deliveries": [received("inventory", "shop.order.shipped", 1)]},
            [("not_accepted", "shop.order.shipped", 1, ("inventory",))],
            id="a type the group does not declare",
        ),
        pytest.param(
            {"deliveries": [received("inventory", "shop.order.placed", None)]},
            [],
            id="an unversioned event of an accepted type is accepted",
        ),
        pytest.param(
            {"deliveries": [received("billing", "shop.order.placed", 2), received("billing", "shop.order.shipped", 1)]},
            [("undeclared_consumer", None, None, ("billing",))],
            id="an undeclared group is one finding",
        ),
        pytest.param(
            {"publications": [sent("shop.order.placed", 1), sent("shop.account.opened", 1, "accounts")]},
            [],
            id="a type some group accepts in another version, and an external type, are consumed",
        ),
        pytest.param(
            {"payloads": [payload("shop.order.placed", 2, '{"order_id": ""}')]},
            [("schema_violation", "shop.order.placed", 2, ())],
            id="one payload, one violation (the most relevant error)",
        ),
        pytest.param(
            {
                "payloads": [
                    payload("shop.order.placed", 1, '{"order_id": 5}'),
                    payload("shop.order.placed", 1, '{"order_id": 6}'),
                ]
            },
            [("schema_violation", "shop.order.placed", 1, ())],
            id="the same rule broken twice is one finding",
        ),
        pytest.param(
            {"payloads": [payload("shop.order.shipped", None, None)]},
            [("schema_violation", "shop.order.shipped", 1, ())],
            id="no data, checked against the newest version",
        ),
        pytest.param(
            {"payloads": [payload("shop.order.placed", 2, "[" * 100_000)]},
            [("schema_violation", "shop.order.placed", 2, ())],
            id="an unreadable payload is a finding",
        ),
        pytest.param(
            {"payloads": [payload("shop.mystery", 1, "{}"), payload("shop.order.placed", 9, "{}")]},
            [],
            id="payloads without a schema are not validated (their type or version is the finding)",
        ),
    ],
)
def test_findings(shop_registry, observed, expected):
    assert kinds(findings.check(shop_registry, observed)) == expected


def test_unconsumed_type_names_its_producer(tmp_path):
    loaded = registry.load(write_registry(tmp_path, {"consumers": {}}))
    answer = findings.check(loaded, {"publications": [sent("shop.order.shipped", 1, "shipping", "shop.shipping", 4)]})
    assert kinds(answer) == [("unconsumed", "shop.order.shipped", None, ("shipping",))]
    assert answer[0]["count"] == 4 and answer[0]["channels"] == ["shop.shipping"]


def test_violation_detail_says_where_and_counts_events(shop_registry):
    answer = findings.check(shop_registry, {"payloads": [payload("shop.order.placed", 2, '{"order_id": "o"}')] * 2})
    assert answer[0]["detail"] == "shop.order.placed v2: data: 'total' is a required property"
    assert answer[0]["count"] == 2 and answer[0]["example_event_id"] == "e1"


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        pytest.param("shop.bad.v1.json", "{not json", "not JSON", id="not JSON"),
        pytest.param("shop.bad.v1.json", b"\xff\xfe", "not UTF-8", id="not text"),
        pytest.param("shop.bad.v1.json", '{"type": "no-such-type"}', "not a valid JSON Schema", id="invalid schema"),
        pytest.param("shop.bad.v1.json", "[1, 2]", "not a JSON Schema", id="a list"),
        pytest.param("shop.bad.v1.json", '{"minLength": -1}', "not a valid JSON Schema", id="bad keyword value"),
        pytest.param("shop.bad.v1.json", "[" * 100_000 + "]" * 100_000, "nested too deeply", id="deep"),
        pytest.param("notes.json", "{}", "not named", id="a stray file"),
        pytest.param("shop.big.v1.json", " " * (registry.MAX_FILE_BYTES + 1), "larger than", id="too large"),
    ],
)
def test_a_bad_registry_file_is_a_finding_and_the_rest_is_used(tmp_path, name, content, why):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    loaded = registry.load(write_registry(tmp_path))
    assert len(loaded.schemas) == 4
    answer = findings.check(loaded, CLEAN)
    assert [f["kind"] for f in answer] == ["registry"]
    assert answer[0]["detail"].startswith(f"{name}: ") and why in answer[0]["detail"]


@pytest.mark.parametrize(
    ("declarations", "why"),
    [
        pytest.param("{", "not JSON", id="not JSON"),
        pytest.param("[]", "wrong shape", id="a list"),
        pytest.param({"consumers": {"x": {"accepts": {"t": ["1"]}}}}, "at consumers/x/accepts/t/0", id="a string"),
        pytest.param({"consumers": {"x": {}}}, "wrong shape at consumers/x", id="no accepts"),
        pytest.param(None, "missing", id="missing"),
    ],
)
def test_bad_declarations_are_a_finding_and_consumer_checks_wait(tmp_path, declarations, why):
    loaded = registry.load(write_registry(tmp_path, declarations))
    answer = findings.check(loaded, {**CLEAN, "deliveries": [received("billing", "shop.order.placed", 1)]})
    assert [f["kind"] for f in answer] == ["registry"]
    assert answer[0]["detail"].startswith("contracts.json: ") and why in answer[0]["detail"]


def test_a_declaration_of_a_schema_the_registry_lacks(tmp_path):
    declared = {"consumers": {"inventory": {"accepts": {"shop.order.placed": [2, 3], "shop.nothing": [1]}}}}
    answer = findings.check(registry.load(write_registry(tmp_path, declared)), {})
    assert [f["detail"] for f in answer] == [
        "inventory accepts shop.nothing v1: not in the registry",
        "inventory accepts shop.order.placed v3: not in the registry",
    ]


def test_a_remote_reference_is_never_fetched(tmp_path):
    remote = {"$ref": "https://example.invalid/schema.json"}
    loaded = registry.load(write_registry(tmp_path, **{"shop.remote.v1.json": remote}))
    answer = findings.check(loaded, {"payloads": [payload("shop.remote", 1, "{}")]})
    assert [f["kind"] for f in answer] == ["schema_violation"]
    assert "could not be checked" in answer[0]["detail"]


def test_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(registry.RegistryError, match="is not a directory"):
        registry.load(tmp_path / "nowhere")


def test_huge_and_weird_type_names_are_cut_and_escaped(shop_registry):
    weird = "shop.\x1b[31mred\n" + "x" * 100_000
    answer = findings.check(shop_registry, {"publications": [sent(weird, 1)]})
    assert answer[0]["kind"] == "unknown_type"
    assert "\x1b" not in answer[0]["type"] and "\n" not in answer[0]["detail"]
    assert len(answer[0]["type"]) < 250 and answer[0]["type"].endswith("characters)")


@pytest.mark.parametrize(
    ("dataschema", "span_version", "expected"),
    [
        ("urn:eventscope:sample:schema:shop.order.placed:2", None, 2),
        ("https://example.com/schemas/order/v3", None, 3),
        ("https://example.com/schemas/order", 4, 4),
        (None, 1, 1),
        (None, None, None),
        ("x:" + "9" * 30, None, None),
        (5, None, None),
    ],
)
def test_version_of(dataschema, span_version, expected):
    assert version_of(dataschema, span_version) == expected


def test_report_counts_every_kind(shop_registry):
    answer = findings.report(shop_registry, {"publications": [sent("shop.mystery", 1)]}, "reg")
    assert answer["ok"] is False and answer["counts"]["unknown_type"] == 1
    assert set(answer["counts"]) == set(findings.KINDS)
    groups = ["inventory", "notifications"]
    accepts = {"inventory": {"shop.order.placed": [2]}, "notifications": {"shop.order.shipped": [1]}}
    expected = {"path": "reg", "schemas": 4, "types": 3, "consumer_groups": groups, "accepts": accepts}
    assert answer["registry"] == expected


def test_asyncapi_document_names_channels_operations_and_messages(shop_registry):
    observed = {
        **CLEAN,
        "publications": [*CLEAN["publications"], sent("shop.mystery", None, "orders", "odd {channel}")],
    }
    document = asyncapi.document(shop_registry, observed)
    assert document["asyncapi"] == "3.0.0"
    assert {c["address"] for c in document["channels"].values()} == {"shop.orders", "shop.shipping", None}
    actions = sorted((o["action"], o["summary"]) for o in document["operations"].values())
    assert actions == [("receive", "inventory"), ("send", "orders"), ("send", "orders"), ("send", "shipping")]
    placed = document["components"]["messages"]["shop.order.placed.v2"]
    assert placed["payload"]["properties"]["data"] == ORDER_V2
    assert placed["payload"]["properties"]["type"]["const"] == "shop.order.placed"
    assert "shop.mystery.unregistered" in document["components"]["messages"]
    keys = [*document["channels"], *document["operations"], *document["components"]["messages"]]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", key) for key in keys)
