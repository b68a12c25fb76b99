"""``python -m collectors contracts`` against a real redis-server, real collectors and eventscope-redis apps:
each planted breach of a contract is reported exactly once, the sample shop keeps its own, and the AsyncAPI
document it writes passes the AsyncAPI Initiative's parser (docs/contracts.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from collectors.contracts import findings
from eventscope_redis import RedisPubSubInstrumentor, message
from tests import client_apps
from tests.integration.test_dashboard_pages import metrics, open_page, texts
from tests.processes import ROOT, Collectors, free_port, wait_until

pytestmark = pytest.mark.integration

SHOP_REGISTRY = ROOT / "sample_system" / "schemas"
SCHEMA = "urn:eventscope:sample:schema:{}:{}"
PLANTED_GROUP = "audit"


def contracts(api: str, *flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "collectors", "contracts", "--api", api, *flags]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def planted_registry(root: Path) -> Path:
    """The shop's registry, with one more consumer group that accepts OrderPlaced v2 only."""
    registry = root / "registry"
    shutil.copytree(SHOP_REGISTRY, registry)
    declarations = json.loads((registry / "contracts.json").read_text())
    declarations["consumers"][PLANTED_GROUP] = {"accepts": {"shop.order.placed": [2]}}
    (registry / "contracts.json").write_text(json.dumps(declarations))
    return registry


class App:
    """One service on its own instrumented redis client, exporting its spans to the collectors over OTLP/HTTP."""

    def __init__(self, redis_url: str, api: str, service: str, **options):
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{api}/v1/traces")))
        self.client = redis.Redis.from_url(redis_url)
        self.instrumentor = RedisPubSubInstrumentor()
        self.instrumentor.instrument_client(self.client, tracer_provider=self.provider, **options)

    def publish(self, channel: str, event_type: str, data: dict, version: int | None = 1) -> None:
        dataschema = SCHEMA.format(event_type, version) if version is not None else None
        with message(type=event_type, dataschema=dataschema):
            self.client.publish(channel, json.dumps(data))

    def close(self) -> None:
        self.instrumentor.uninstrument_client(self.client)
        self.provider.shutdown()


@pytest.fixture
def planted(redis_server, tmp_path):
    """Collectors with the planted registry; a producer app and the ``audit`` consumer on test.orders."""
    registry = planted_registry(tmp_path)
    collectors = Collectors(redis_server.url, extra_env={"EVENTSCOPE_REGISTRY": str(registry)})
    producer = App(redis_server.url, collectors.api, "planter")
    consumer = App(redis_server.url, collectors.api, PLANTED_GROUP, consumer_group=PLANTED_GROUP)
    received = []
    pubsub = consumer.client.pubsub()
    pubsub.subscribe(**{"test.orders": received.append})
    worker = pubsub.run_in_thread(sleep_time=0.02, daemon=True)
    wait_until(lambda: redis_server.client().pubsub_numsub("test.orders")[0][1] == 1, what="audit subscribed")
    yield collectors, producer, registry, received
    worker.stop()
    worker.join(timeout=10)
    producer.close()
    consumer.close()
    collectors.stop()
    assert "Traceback" not in collectors.log(), collectors.log()


def plant(producer: App, received: list) -> None:
    """Three breaches, one event each: a version audit does not accept, a type nobody registered, bad data."""
    order_v1 = {"order_id": "o-1", "user_id": "u-1", "lines": [{"sku": "s", "qty": 1}], "total_cents": 100}
    producer.publish("test.orders", "shop.order.placed", order_v1, version=1)
    producer.publish("test.mystery", "shop.mystery.happened", {"what": "nobody knows"}, version=None)
    producer.publish("test.shipping", "shop.order.shipped", {"user_id": "u-1"}, version=1)
    wait_until(lambda: len(received) == 1, what="audit received its order")


def observed_all(collectors: Collectors) -> bool:
    seen = collectors.get("contracts/observed")
    producers = {row["producer"] for row in seen["publications"]}
    return seen["messages"] == 3 and producers == {"planter"} and {d["group"] for d in seen["deliveries"]} == {"audit"}


def test_each_planted_breach_is_reported_exactly_once(planted, tmp_path):
    collectors, producer, registry, received = planted
    plant(producer, received)
    wait_until(lambda: observed_all(collectors), what="every publication and delivery stored")
    document = tmp_path / "asyncapi.json"
    result = contracts(collectors.api, "--registry", str(registry), "--json", "--asyncapi", str(document))
    assert result.returncode == 1, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    found = [(f["kind"], f["type"], f["version"], f["who"], f["channels"], f["count"]) for f in answer["findings"]]
    assert found == [
        ("unknown_type", "shop.mystery.happened", None, ["planter"], ["test.mystery"], 1),
        ("schema_violation", "shop.order.shipped", 1, ["planter"], ["test.shipping"], 1),
        ("not_accepted", "shop.order.placed", 1, [PLANTED_GROUP], ["test.orders"], 1),
    ]
    assert answer["findings"][1]["detail"] == "shop.order.shipped v1: data: 'order_id' is a required property"
    assert answer["ok"] is False and answer["verdict"] == "FAILED: 3 contract findings"
    assert answer["observed"] == {"publications": 3, "deliveries": 1, "messages": 3, "messages_checked": 3}
    served = collectors.get("contracts")
    assert served["findings"] == answer["findings"] and served["registry"]["path"] == str(registry)
    readable = contracts(collectors.api)  # the collectors' own registry
    assert readable.returncode == 1, readable.stdout + readable.stderr
    lines = readable.stdout.splitlines()
    assert "  not_accepted: audit receives shop.order.placed v1 and accepts only v2" in lines[-2]
    assert lines[-1] == "FAILED: 3 contract findings"
    assert json.loads(document.read_text())["asyncapi"] == "3.0.0"


def test_a_payload_of_another_shape_is_validated_however_many_came_after_it(planted):
    """Past the newest N per type, the newest payload of each shape is still read: a missing or mistyped field
    anywhere in the window is found; a bad value in a payload of the usual shape only among the newest N."""
    collectors, producer, registry, _ = planted
    producer.publish("test.shipping", "shop.order.shipped", {"user_id": "u-1"})  # no order_id: another shape
    producer.publish("test.shipping", "shop.order.shipped", {"order_id": "", "user_id": "u-1"})  # a bad value
    for n in range(3):
        producer.publish("test.shipping", "shop.order.shipped", {"order_id": f"o-{n}", "user_id": "u-1"})
    wait_until(lambda: collectors.get("contracts/observed")["messages"] == 5, what="the five events stored")

    def violations(*flags: str) -> list[str]:
        answer = json.loads(contracts(collectors.api, "--registry", str(registry), "--json", *flags).stdout)
        return [f["detail"] for f in answer["findings"] if f["kind"] == "schema_violation"]

    missing = "shop.order.shipped v1: data: 'order_id' is a required property"
    empty = "shop.order.shipped v1: data/order_id: '' should be non-empty"
    assert violations("--payloads", "1") == [missing]
    assert sorted(violations("--payloads", "4")) == sorted([missing, empty])


def test_the_contracts_page_shows_the_same_findings(planted, monkeypatch):
    collectors, producer, _, received = planted
    plant(producer, received)
    wait_until(lambda: observed_all(collectors), what="every publication and delivery stored")
    app = open_page(collectors.api, "contracts", monkeypatch)
    assert metrics(app)["Findings"] == "3"
    shown = app.dataframe[0].value
    assert list(shown["finding"]) == ["Unknown type", "Schema violation", "Not accepted"]
    assert list(shown["type"]) == ["shop.mystery.happened", "shop.order.shipped", "shop.order.placed"]
    exchanges = app.dataframe[1].value
    audit = exchanges[exchanges["who"] == PLANTED_GROUP]
    assert list(audit["contract"]) == ["accepts only 2"] and list(audit["version"]) == [1]


def test_the_contracts_page_says_when_there_is_no_registry(collectors, monkeypatch):
    app = open_page(collectors.api, "contracts", monkeypatch)
    assert "No schema registry here: the collectors were started without a schema registry" in texts(app)


def test_the_sample_shop_keeps_its_contracts(redis_server):
    from sample_system.config import load_config
    from sample_system.shop import Shop
    from sample_system.storefront import run_load

    collectors = Collectors(redis_server.url)
    try:
        config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_V1_SHARE": "0.3"})
        with Shop(config, lambda: OTLPSpanExporter(endpoint=f"{collectors.api}/v1/traces")) as shop:
            run_load(shop.handlers(), rate=0, seed=11, stop=threading.Event(), limit=40)
            assert shop.wait_idle()
        wait_until(lambda: collectors.get("contracts/observed")["deliveries"], what="deliveries stored")
        time.sleep(1)  # the last spans of the flush
        result = contracts(collectors.api, "--registry", str(SHOP_REGISTRY), "--json")
        answer = json.loads(result.stdout)
        assert result.returncode == 0, answer["findings"]
        assert answer["findings"] == [] and answer["verdict"] == "ok: every observed event keeps its contract"
        versions = {(r["type"], r["version"]) for r in collectors.get("contracts/observed")["deliveries"]}
        assert {("shop.order.placed", 1), ("shop.order.placed", 2)} <= versions
    finally:
        collectors.stop()


def test_the_poison_message_fault_is_found_as_schema_violations_against_its_ground_truth(redis_server, tmp_path):
    """Every poisoned order (the shop's ground truth) is counted in a schema violation, and nothing else is found."""
    collectors = Collectors(redis_server.url, extra_env={"EVENTSCOPE_REGISTRY": str(SHOP_REGISTRY)})
    truth_path = tmp_path / "truth.jsonl"
    try:
        command = [sys.executable, "-m", "sample_system", "run", "--redis-url", redis_server.url, "--rate", "30",
                   "--seconds", "6", "--seed", "3", "--fault", "poison_message:rate=0.1,channel=shop.orders",
                   "--truth", str(truth_path)]  # fmt: skip
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collectors.api}
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
        truth = [json.loads(line) for line in truth_path.read_text().splitlines()]
        poisoned = {t["event_id"] for t in truth if t["fault"] == "poison_message"}
        assert poisoned, "the fault never fired"

        def violations() -> int:  # the tap may still be storing the last messages when the shop has stopped
            return sum(f["count"] for f in collectors.get("contracts")["findings"] if f["kind"] == "schema_violation")

        wait_until(lambda: violations() >= len(poisoned), what="every poisoned order stored")
        answer = json.loads(contracts(collectors.api, "--json").stdout)
        assert {(f["kind"], f["type"], tuple(f["who"])) for f in answer["findings"]} <= {
            ("schema_violation", "shop.order.placed", ("orders",))
        }
        assert sum(f["count"] for f in answer["findings"]) == len(poisoned)
        assert {f["example_event_id"] for f in answer["findings"]} <= poisoned
    finally:
        collectors.stop()


def parse_asyncapi(path: Path) -> dict:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm and node are needed to run the AsyncAPI parser (@asyncapi/parser): apt-get install npm")
    modules = client_apps.node_modules("asyncapi")
    script = client_apps.APPS / "asyncapi" / "validate.js"
    done = subprocess.run(
        ["node", str(script), str(path)],
        env={"NODE_PATH": str(modules), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_the_asyncapi_document_passes_the_asyncapi_parser(planted, tmp_path):
    collectors, producer, registry, received = planted
    plant(producer, received)
    wait_until(lambda: observed_all(collectors), what="every publication and delivery stored")
    path = tmp_path / "flow.json"
    result = contracts(collectors.api, "--registry", str(registry), "--asyncapi", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    parsed = parse_asyncapi(path)
    assert parsed["valid"], parsed["errors"]
    assert parsed["version"] == "3.0.0"
    assert sorted(parsed["channels"]) == ["test.mystery", "test.orders", "test.shipping"]
    assert sorted(map(tuple, parsed["operations"])) == [
        ("receive", "test.orders"),
        ("send", "test.mystery"),
        ("send", "test.orders"),
        ("send", "test.shipping"),
    ]
    assert {"shop.order.placed", "shop.mystery.happened", "shop.user.signed_up"} <= set(parsed["messages"])
    broken = json.loads(path.read_text())
    broken["operations"][next(iter(broken["operations"]))]["action"] = "publish"  # AsyncAPI 2's verb
    path.write_text(json.dumps(broken))
    assert parse_asyncapi(path)["valid"] is False


def test_hostile_registry_files_and_event_types_are_findings(redis_server, tmp_path):
    registry = planted_registry(tmp_path)
    (registry / "shop.broken.v1.json").write_text("{this is not json")
    (registry / "shop.odd.v1.json").write_text('{"type": "no-such-type"}')
    collectors = Collectors(redis_server.url, extra_env={"EVENTSCOPE_REGISTRY": str(registry)})
    try:
        weird = "shop.\x1b[31m\n" + "x" * 60_000
        event = {"specversion": "1.0", "id": "weird-1", "source": "/weird", "type": weird, "data": {}}
        redis_server.client().publish("test.weird", json.dumps(event))
        wait_until(lambda: collectors.get("contracts/observed")["messages"] == 1, what="the weird event stored")
        result = contracts(collectors.api, "--json")
        assert result.returncode == 1, result.stdout + result.stderr
        answer = json.loads(result.stdout)
        escaped = "shop.\\x1b[31m\\n"
        cut = escaped + "x" * (findings.MAX_SHOWN - len(escaped))
        assert [(f["kind"], f["detail"].split(":")[0]) for f in answer["findings"]] == [
            ("registry", "shop.broken.v1.json"),
            ("registry", "shop.odd.v1.json"),
            ("unknown_type", f"{cut}... (60015 characters) has no schema in the registry"),
        ]
        readable = contracts(collectors.api)
        assert readable.returncode == 1 and "\x1b" not in readable.stdout
        document = tmp_path / "weird.json"
        assert contracts(collectors.api, "--registry", str(registry), "--asyncapi", str(document)).returncode == 1
        parsed = parse_asyncapi(document)
        assert parsed["valid"], parsed["errors"]
        assert parsed["channels"] == ["test.weird"] and f"{cut}... (60015 characters)" in parsed["messages"]
    finally:
        collectors.stop()
    assert "Traceback" not in collectors.log(), collectors.log()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param([], "started without a schema registry", id="no registry anywhere"),
        pytest.param(["--registry", "/nowhere/at/all"], "is not a directory", id="no such registry"),
        pytest.param(["--payloads", "-1"], "--payloads must be from 0", id="bad payloads"),
        pytest.param(["--asyncapi", "/tmp/x.json"], "--asyncapi needs --registry", id="asyncapi without registry"),
    ],
)
def test_usage_errors_exit_2(collectors, flags, message):
    result = contracts(collectors.api, *flags)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stdout
    as_json = json.loads(contracts(collectors.api, *flags, "--json").stdout)
    assert as_json["ok"] is False and message in as_json["error"]


def test_unreachable_api_exits_2():
    result = contracts(f"http://127.0.0.1:{free_port()}", "--registry", str(SHOP_REGISTRY))
    assert result.returncode == 2 and "cannot read contracts/observed" in result.stdout


def test_serve_refuses_a_registry_that_is_not_a_directory(tmp_path):
    command = [sys.executable, "-m", "collectors", "serve", "--registry", str(tmp_path / "none"), "--listen"]
    result = subprocess.run([*command, f"127.0.0.1:{free_port()}"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "--registry/EVENTSCOPE_REGISTRY" in result.stderr
