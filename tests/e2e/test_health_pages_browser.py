"""Refused senders and messages without an envelope, read off the pages in a real browser.

A collectors process with a small body limit refuses OTLP requests planted for two reasons (a wrong
content type, an oversized body); the tapped bus carries CloudEvents, unenveloped messages and one
malformed one; two consumer spans deliver one message twice, the second time as a redelivery. The
Overview must show every message kind and the redelivery, and Instrumentation health each refusal
reason with its count: the numbers checked are the ones planted here, not read back from the API.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from devtools.processes import running_dashboard
from tests.e2e.conftest import full_screenshot
from tests.e2e.test_demo_browser import open_page, shows
from tests.processes import Collectors, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

WAIT_S = 120
MAX_BODY = 4096
CHANNEL = "plain.orders"
CLOUDEVENTS = 4
UNENVELOPED = [b"hello", b"order 17 shipped", json.dumps({"order": 17}).encode(), b"[1, 2, 3]", b"\xff\xfe"]
MALFORMED = [json.dumps({"specversion": "1.0", "id": "m1"}).encode()]  # claims to be a CloudEvent, lacks fields
REFUSED = {"unsupported_media": 2, "body_too_large": 1}


def cloudevent(sequence: int) -> bytes:
    event = {"specversion": "1.0", "id": f"ok{sequence}", "source": "/plain/app", "type": "plain.order"}
    return json.dumps({**event, "sequence": str(sequence)}).encode()


def post_refused(api: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(f"{api}/v1/traces", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def plant_refusals(api: str) -> None:
    for _ in range(REFUSED["unsupported_media"]):
        assert post_refused(api, b"not otlp", "text/plain") == 415
    assert post_refused(api, b"\x00" * (MAX_BODY * 2), "application/x-protobuf") == 413


def plant_redelivery(api: str) -> None:
    """One message delivered twice to one group: the first attempt fails, the second says it is attempt 2."""
    provider = TracerProvider(resource=Resource.create({"service.name": "plain-consumer"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{api}/v1/traces")))
    tracer = provider.get_tracer("tests")
    message = {
        "messaging.system": "gcp_pubsub",
        "messaging.operation.type": "process",
        "messaging.destination.name": "plain.tasks",
        "messaging.message.id": "r1",
        "messaging.consumer.group.name": "plain-consumer",
    }
    for attempt in (1, 2):
        attributes = {**message, "messaging.gcp_pubsub.message.delivery_attempt": attempt}
        with tracer.start_as_current_span("process plain.tasks", kind=SpanKind.CONSUMER, attributes=attributes) as span:
            if attempt == 1:
                span.set_status(Status(StatusCode.ERROR, "handler failed"))
    provider.shutdown()


@pytest.fixture(scope="module")
def dashboard(redis_server):
    collectors = Collectors(redis_server.url, extra_env={"EVENTSCOPE_MAX_BODY_BYTES": str(MAX_BODY)})
    client = redis_server.client()
    for payload in [cloudevent(n) for n in range(1, CLOUDEVENTS + 1)] + UNENVELOPED + MALFORMED:
        client.publish(CHANNEL, payload)
    plant_refusals(collectors.api)
    plant_redelivery(collectors.api)
    total = CLOUDEVENTS + len(UNENVELOPED) + len(MALFORMED)
    wait_until(lambda: collectors.get("health")["store"]["bus_messages"] == total, WAIT_S, what="bus messages stored")
    wait_until(lambda: collectors.get("health")["store"]["spans"] == 2, WAIT_S, what="spans stored")
    try:
        with running_dashboard(collectors.api, WAIT_S) as url:
            yield url
    finally:
        collectors.stop()


def table_rows(page, first_column: str) -> list[list[str]]:
    """The rows of the data grid whose first column is ``first_column``, read off its accessible table (the grid
    draws on a canvas; its cells are also written, for screen readers, as a table inside it)."""
    script = """(first) => {
        for (const grid of document.querySelectorAll('[data-testid=stDataFrame] table[role=grid]')) {
            const header = [...grid.querySelectorAll('[role=columnheader]')].map(c => c.textContent.trim());
            if (header[0] !== first) continue;
            return [...grid.querySelectorAll('tbody [role=row]')]
                .map(row => [...row.querySelectorAll('[role=gridcell]')].map(c => c.textContent.trim()));
        }
        return null;
    }"""
    return page.wait_for_function(script, arg=first_column, timeout=WAIT_S * 1000, polling=500).json_value()


def test_the_overview_shows_every_kind_of_message_and_the_redelivery(dashboard, page, screenshots):
    open_page(page, dashboard, "?window=all", "Overview")
    shows(page, "Bus messages", CLOUDEVENTS + len(UNENVELOPED) + len(MALFORMED), WAIT_S)
    shows(page, "CloudEvents", CLOUDEVENTS, WAIT_S)
    shows(page, "Unenveloped", len(UNENVELOPED), WAIT_S)
    shows(page, "Malformed", len(MALFORMED), WAIT_S)
    shows(page, "Redeliveries", 1, WAIT_S)
    full_screenshot(page, screenshots / "health-overview.png")


def test_instrumentation_health_says_how_many_requests_were_refused_and_why(dashboard, page, screenshots):
    open_page(page, dashboard, "instrumentation?window=all", "Instrumentation health")
    total = sum(REFUSED.values())
    page.get_by_text(f"The collectors refused {total} telemetry request(s)").first.wait_for(timeout=WAIT_S * 1000)
    rows = table_rows(page, "reason")
    counts = {row[0]: int(row[1]) for row in rows if row}
    assert counts == REFUSED
    advice = {row[0]: row[3] for row in rows if row}
    assert "application/x-protobuf" in advice["unsupported_media"]
    assert "EVENTSCOPE_MAX_BODY_BYTES" in advice["body_too_large"]
    full_screenshot(page, screenshots / "health-instrumentation.png")
