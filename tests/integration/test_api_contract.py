"""Every endpoint answers in the shape its OpenAPI schema states; bad parameters are a 400."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import jsonschema
import pytest

from collectors.serving import api, openapi
from tests.integration.test_analysis_shop import EventFlow, shop
from tests.processes import Collectors

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_only():
    """One collectors process without a tap, shared by the tests that only read parameters."""
    process = Collectors(redis_url=None)
    yield process
    process.stop()


def fetch(base: str, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base}/api/v1/{path}", timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def validator(document: dict, name: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_every_route_is_documented():
    documented = {path.replace("{trace_id}", "x" * 32).replace("{event_id}", "e") for path in openapi.PATHS}
    for pattern, _ in api.ROUTES:
        assert any(pattern.match(path) for path in documented), pattern.pattern


def test_every_answer_matches_its_schema(collectors, redis_server):
    flow = EventFlow(collectors.api, redis_server.client())
    try:
        built = shop(flow, collectors)
    finally:
        flow.close()
    status, document = fetch(collectors.api, "openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    event = built["events"][6]
    concrete = {
        "/api/v1/traces/{trace_id}": f"traces/{event['context'].trace_id:032x}",
        "/api/v1/events/{event_id}": f"events/{event['id']}",
        "/api/v1/sequences": "sequences?channel=shop.orders&source=/orders/1&partitionkey=p0",
    }
    for path, (_, schema, _) in openapi.PATHS.items():
        status, answer = fetch(collectors.api, concrete.get(path, path.removeprefix("/api/v1/")))
        assert status == 200, (path, answer)
        validator(document, schema).validate(answer)
        assert not foreign_keys(answer), (path, foreign_keys(answer))


SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")
AS_RECEIVED = {"attributes", "resource_attributes", "document", "paths", "components"}
"""Maps whose keys are data as a sender wrote it (span attributes) or the OpenAPI document's own."""


def foreign_keys(answer: object, where: str = "") -> list[str]:
    """Every field name in an answer that is not snake_case: one vocabulary, whatever the store calls a column."""
    found = []
    if isinstance(answer, dict):
        for key, value in answer.items():
            if not SNAKE_CASE.fullmatch(str(key)):
                found.append(f"{where}.{key}")
            if key not in AS_RECEIVED:
                found += foreign_keys(value, f"{where}.{key}")
    elif isinstance(answer, list):
        for item in answer:
            found += foreign_keys(item, f"{where}[]")
    return found


@pytest.mark.parametrize(
    "path,message",
    [
        ("report?since_ns=yesterday", "since_ns must be an integer"),
        ("overview?since_ns=10&until_ns=5", "until_ns must not be before since_ns"),
        ("latency?by=colour", "by must be one of: channel, group, type"),
        ("latency?bucket_s=0", "bucket_s must be an integer from 1"),
        ("loss?grace_s=-1", "grace_s must be a number from 0"),
        ("loss?grace_s=nan", "grace_s must be a number"),
        ("flow?since_ns=-5", "since_ns must be an integer from 0"),
        ("traces?error=maybe", "error must be true or false"),
        ("traces?limit=0", "limit must be an integer from 1 to 1000"),
        ("traces?min_ms=abc", "min_ms must be a number"),
        ("sequences?source=/s", "channel is required"),
        ("traces/nothex", "trace id must be 32 hex characters"),
        ("duplicates?group=" + "g" * 600, "group must be 1 to 512 characters"),
        ("slow-consumers?bucket_s=soon", "bucket_s must be an integer from 1 to 3600"),
        ("slow-consumers?factor=0.5", "factor must be a number from 1 to 1000"),
        ("slow-consumers?min_ms=-1", "min_ms must be a number from 0"),
        ("slow-consumers?min_buckets=0", "min_buckets must be an integer from 1"),
    ],
)
def test_bad_parameters_are_a_400_with_a_message(api_only, path, message):
    status, answer = fetch(api_only.api, path)
    assert status == 400 and message in answer["error"], answer


def test_unknown_things_are_a_404(api_only):
    assert fetch(api_only.api, "events/never-seen")[0] == 404
    assert fetch(api_only.api, "traces/" + "0" * 32)[0] == 404
    assert fetch(api_only.api, "nothing-here")[0] == 404


def test_request_values_never_reach_sql_as_text(api_only):
    hostile = "x' OR 1=1; DROP TABLE otel_traces; --"
    paths = ("report", "loss", "flow", "latency", "duplicates", "dead-letters", "instrumentation", "traces")
    for path in (*paths, "slow-consumers"):
        status, answer = fetch(api_only.api, f"{path}?channel={urllib.request.quote(hostile)}")
        assert status == 200, (path, answer)
    assert fetch(api_only.api, "health")[1]["status"] == "ok"
    assert fetch(api_only.api, "report")[0] == 200


def test_broker_route_answers_from_the_broker_stats(collectors):
    status, answer = fetch(collectors.api, "broker")
    assert status == 200, answer
    _, document = fetch(collectors.api, "openapi.json")
    validator(document, "broker").validate(answer)
    assert fetch(collectors.api, "broker?since_ns=later")[0] == 400
