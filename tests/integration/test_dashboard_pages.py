"""Each dashboard page through Streamlit's AppTest (via the router), against a real collectors process
holding known data: bus events through a real redis-server, spans through the real OTLP exporter.

Every endpoint a page reads must exist and answer: a 404 fails the test; each page must show what the
data holds.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from streamlit.testing.v1 import AppTest

from tests.processes import ROOT, Collectors, free_port, wait_until

pytestmark = pytest.mark.integration

APP = str(ROOT / "dashboard" / "app.py")
PAGES = (
    "overview", "latency", "ordering", "duplicates", "traces", "event", "dead_letters", "broker", "scenarios",
    "instrumentation", "contracts", "compare",
)  # fmt: skip
CHANNEL = "t.orders"
SPANS = 7


def event(sequence: int, event_id: str | None = None) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": event_id or f"e{sequence}",
            "source": "/t/app",
            "type": "t",
            "sequence": str(sequence),
        }
    )


def tracer(api: str, service: str) -> tuple[TracerProvider, trace.Tracer]:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{api}/v1/traces")))
    return provider, provider.get_tracer("tests")


def message_attributes(event_id: str, sequence: int, operation: str) -> dict:
    return {
        "messaging.system": "redis",
        "messaging.operation.type": operation,
        "messaging.destination.name": CHANNEL,
        "messaging.message.id": event_id,
        "cloudevents.event_id": event_id,
        "cloudevents.event_source": "/t/app",
        "cloudevents.event_type": "t",
        "eventscope.sequence": sequence,
    }


def send_spans(api: str) -> dict[str, str]:
    """Producer spans for e1 and e5; e1 consumed in a new trace linked to its producer, e5 dead-lettered
    after 3 attempts, e2 delivered twice (skipped the second time). Returns the trace ids by role."""
    producer_provider, producer = tracer(api, "t-producer")
    consumer_provider, consumer = tracer(api, "t-inventory")
    contexts = {}
    for event_id, sequence in (("e1", 1), ("e5", 5), ("e2", 2)):
        with producer.start_as_current_span(
            f"send {CHANNEL}", kind=SpanKind.PRODUCER, attributes=message_attributes(event_id, sequence, "send")
        ) as span:
            contexts[event_id] = span.get_span_context()
    ids = {"producer": format(contexts["e1"].trace_id, "032x")}
    group = {"messaging.consumer.group.name": "t-inventory"}
    with consumer.start_as_current_span(
        f"process {CHANNEL}", kind=SpanKind.CONSUMER, links=[Link(contexts["e1"])],
        attributes={**message_attributes("e1", 1, "process"), **group, "eventscope.outcome": "processed"},
    ) as span:  # fmt: skip
        ids["consumer"] = format(span.get_span_context().trace_id, "032x")
    with consumer.start_as_current_span(
        f"process {CHANNEL}", kind=SpanKind.CONSUMER, links=[Link(contexts["e5"])],
        context=trace.set_span_in_context(trace.NonRecordingSpan(contexts["e5"])),
        attributes={**message_attributes("e5", 5, "process"), **group, "eventscope.outcome": "dead_lettered",
                    "eventscope.attempts": 3, "eventscope.dead_letter.reason": "handler kept failing"},
    ) as span:  # fmt: skip
        for attempt in (1, 2):
            span.add_event("retry", {"eventscope.attempt": attempt, "eventscope.retry.delay_ms": 10.0})
        span.set_status(Status(StatusCode.ERROR, "handler kept failing"))
    for outcome in ("processed", "duplicate_skipped"):
        with consumer.start_as_current_span(
            f"process {CHANNEL}", kind=SpanKind.CONSUMER, links=[Link(contexts["e2"])],
            attributes={**message_attributes("e2", 2, "process"), **group, "eventscope.outcome": outcome},
        ):  # fmt: skip
            pass
    producer_provider.shutdown()
    consumer_provider.shutdown()
    return ids


@pytest.fixture(scope="module")
def known(redis_server):
    """One collectors process for the module: 5 bus messages (one duplicate id, a gap 3–4, one malformed)
    and 7 spans."""
    process = Collectors(redis_server.url)
    client = redis_server.client()
    for sequence, event_id in ((1, None), (2, None), (2, "e2"), (5, None)):
        client.publish(CHANNEL, event(sequence, event_id))
    client.publish(CHANNEL, b'{"specversion": "garbage"}')
    trace_ids = send_spans(process.api)
    wait_until(lambda: process.get("health")["store"]["bus_messages"] == 5, what="bus messages stored")
    wait_until(lambda: process.get("health")["store"]["spans"] == SPANS, what="spans stored")
    yield process, trace_ids
    process.stop()


def answer(api: str, path: str) -> dict:
    """The API's answer; any error status (a 404 included) fails the test."""
    with urllib.request.urlopen(f"{api}/api/v1/{path}", timeout=10) as response:
        return json.load(response)


def open_page(api: str, page: str, monkeypatch, **query: str) -> AppTest:
    monkeypatch.setenv("EVENTSCOPE_API", api)
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.run()
    app.switch_page(f"views/{page}.py").run()
    assert not app.exception, app.exception
    return app


def texts(app: AppTest) -> str:
    parts = [
        e.value for kind in ("info", "warning", "error", "success", "markdown", "caption") for e in getattr(app, kind)
    ]
    return "\n".join(str(p) for p in parts)


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_an_exception(known, page, monkeypatch):
    process, _ = known
    app = open_page(process.api, page, monkeypatch)
    assert app.title[0].value


def test_overview_shows_the_numbers(known, monkeypatch):
    process, _ = known
    app = open_page(process.api, "overview", monkeypatch, window="all")
    overview = answer(process.api, "overview")
    shown = metrics(app)
    assert shown["Malformed"] == "1"
    assert shown["Dead letters"] == "1"  # e5, after 3 attempts
    assert shown["Bus messages"] == "5"  # four CloudEvents and the malformed one
    assert shown["CloudEvents"] == "4"
    assert shown["Unenveloped"] == "0"
    assert shown["Duplicates"] == f"{overview['duplicates']:,}"
    assert shown["Deliveries"] == f"{overview['deliveries']:,}"
    app.toggle(key="overview_streams").set_value(True).run()
    streams = app.dataframe[-1].value
    assert "3–4" in list(streams["gaps"])


def test_overview_draws_the_flow_graph(known, monkeypatch):
    process, _ = known
    app = open_page(process.api, "overview", monkeypatch, window="all")
    nodes = {node["id"] for node in answer(process.api, "flow")["nodes"]}
    assert {f"channel:{CHANNEL}", "service:t-producer", "service:t-inventory"} <= nodes
    assert not app.error and not app.warning, texts(app)
    assert len(app.get("plotly_chart")) == 1


def test_duplicates_page_counts_the_duplicated_event(known, monkeypatch):
    process, _ = known
    app = open_page(process.api, "duplicates", monkeypatch, window="all")
    duplicates = answer(process.api, "duplicates")
    assert metrics(app)["Duplicated events"] == f"{len(duplicates['duplicates']):,}"
    assert "e2" in set(app.dataframe[0].value["event_id"])


def test_traces_page_shows_links_both_ways_and_opens_the_linked_trace(known, monkeypatch):
    process, ids = known
    app = open_page(process.api, "traces", monkeypatch, window="all", trace=ids["consumer"])
    assert f"Trace {ids['consumer']}" in [h.value for h in app.subheader]
    assert ids["producer"] in set(app.dataframe[-2].value["linked trace"])
    opener = next(b for b in app.button if "its producer" in b.label)
    opener.click().run()
    assert f"Trace {ids['producer']}" in [h.value for h in app.subheader]
    assert ids["consumer"] in set(app.dataframe[-1].value["linking trace"])


def test_event_page_follows_a_dead_lettered_event(known, monkeypatch):
    process, _ = known
    app = open_page(process.api, "event", monkeypatch, id="e5")
    deliveries = app.dataframe[0].value
    assert list(deliveries["outcome"]) == ["dead_lettered"]
    assert list(deliveries["attempts"]) == [3]


def test_dead_letters_page_lists_the_dead_letter(known, monkeypatch):
    process, _ = known
    app = open_page(process.api, "dead_letters", monkeypatch, window="all")
    dead = answer(process.api, "dead-letters")
    assert metrics(app)["Dead letters in this window"] == f"{len(dead['dead_letters']):,}"
    assert "e5" in set(app.dataframe[0].value["event_id"])
    shown = metrics(app)
    assert (shown["Retried deliveries"], shown["Then processed"], shown["Then dead-lettered"]) == ("1", "0", "1")
    retried = app.dataframe[1].value
    assert list(retried["event_id"]) == ["e5"]
    assert (retried["attempts"][0], retried["failed attempts"][0], retried["backoff"][0]) == (3, 3, "10.0 ms → 10.0 ms")


@pytest.mark.parametrize(
    ("page", "endpoint"),
    [("latency", "latency"), ("broker", "broker"), ("instrumentation", "instrumentation"), ("ordering", "loss")],
)
def test_pages_show_their_answers_without_a_notice(known, page, endpoint, monkeypatch):
    process, _ = known
    answer(process.api, endpoint)  # the endpoint exists and answers
    app = open_page(process.api, page, monkeypatch, window="all")
    assert not app.error and not app.warning, texts(app)


def test_overview_empty_state_tells_what_to_do(monkeypatch):
    process = Collectors(redis_url=None)
    try:
        app = open_page(process.api, "overview", monkeypatch)
        assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318" in texts(app)
    finally:
        process.stop()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_says_when_the_collectors_are_unreachable(page, monkeypatch):
    app = open_page(f"http://127.0.0.1:{free_port()}", page, monkeypatch)
    if page in ("event", "scenarios", "compare"):
        return  # nothing asked of the collectors until an id is typed or a scenario runs
    assert "collectors are unreachable" in texts(app)
