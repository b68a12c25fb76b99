"""Hostile input to the dashboard, through Streamlit's AppTest against a real collectors process.

A crafted link (every URL parameter a page reads, with garbage) falls back to the default with a notice
and never raises; data values (a channel, a service, an event id, a verdict, an error message) never
reach Markdown as Markdown; scenario and redrive controls exist only when EVENTSCOPE_CONTROLS allows
them; the API client sends the bearer token; Streamlit's own configuration binds 127.0.0.1 and shows no
error details. The browser half (what Chromium renders, what it fetches) is tests/e2e/test_dashboard_hostile_browser.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    "instrumentation", "contracts",
)  # fmt: skip
TITLES = {
    "overview": "Overview", "latency": "Latency", "ordering": "Ordering and loss", "duplicates": "Duplicates",
    "traces": "Traces", "event": "Event", "dead_letters": "Dead letters", "broker": "Broker",
    "scenarios": "Scenarios", "instrumentation": "Instrumentation health", "contracts": "Contracts",
}  # fmt: skip
INVALID = "is not valid"
CONTROLS = "EVENTSCOPE_CONTROLS"
TRAP = "http://127.0.0.1:9"
"""Where hostile links and images point; nothing listens there (the browser test runs its own trap)."""


def hostile_values(trap: str = TRAP) -> dict[str, str]:
    """Markdown and HTML as a sender could put them into names and ids."""
    return {
        "channel": f"![chan]({trap}/channel.png)",
        "service": f"[svc]({trap}/service) ![svc]({trap}/service.png)",
        "group": f"<a href='{trap}/group'>grp</a> [grp]({trap}/group)",
        "event_id": f"[evt]({trap}/event)",
        "reason": f"![why]({trap}/reason.png) **failed** <img src='{trap}/reason2.png'>",
        "type": f":red[t] $x$ [t]({trap}/type)",
    }


def publish_hostile(redis_client, values: dict[str, str]) -> None:
    """Bus messages on a hostile channel with a hostile id and type, with a gap (1, 2, 4)."""
    for sequence in (1, 2, 4):
        event_id = values["event_id"] if sequence == 1 else f"{values['event_id']}-{sequence}"
        body = {"specversion": "1.0", "id": event_id, "source": "/h/app", "type": values["type"]}
        redis_client.publish(values["channel"], json.dumps({**body, "sequence": str(sequence)}))


def send_hostile_spans(api: str, values: dict[str, str]) -> str:
    """A producer span of a service with a hostile name, and a consumer span in a hostile group that
    dead-letters the hostile event with a hostile reason; returns the consumer's trace id."""
    providers = []

    def tracer(service: str) -> trace.Tracer:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{api}/v1/traces")))
        providers.append(provider)
        return provider.get_tracer("tests")

    message = {
        "messaging.system": "redis",
        "messaging.destination.name": values["channel"],
        "messaging.message.id": values["event_id"],
        "cloudevents.event_id": values["event_id"],
        "cloudevents.event_source": "/h/app",
        "cloudevents.event_type": values["type"],
        "eventscope.sequence": 1,
    }
    with tracer(values["service"]).start_as_current_span(
        f"send {values['channel']}", kind=SpanKind.PRODUCER, attributes={**message, "messaging.operation.type": "send"}
    ) as producer:
        context = producer.get_span_context()
    with tracer(values["group"]).start_as_current_span(
        f"process {values['channel']}",
        kind=SpanKind.CONSUMER,
        links=[Link(context)],
        attributes={
            **message,
            "messaging.operation.type": "process",
            "messaging.consumer.group.name": values["group"],
            "eventscope.outcome": "dead_lettered",
            "eventscope.attempts": 2,
            "eventscope.dead_letter.reason": values["reason"],
        },
    ) as consumer:
        consumer.set_status(Status(StatusCode.ERROR, values["reason"]))
        trace_id = format(consumer.get_span_context().trace_id, "032x")
    for provider in providers:
        provider.shutdown()
    return trace_id


@pytest.fixture(scope="module")
def hostile(redis_server):
    """One collectors process holding hostile names: 3 bus messages and 2 spans."""
    process = Collectors(redis_server.url)
    values = hostile_values()
    publish_hostile(redis_server.client(), values)
    trace_id = send_hostile_spans(process.api, values)
    wait_until(lambda: process.get("health")["store"]["bus_messages"] == 3, what="hostile bus messages stored")
    wait_until(lambda: process.get("health")["store"]["spans"] == 2, what="hostile spans stored")
    yield process, values, trace_id
    process.stop()


def open_page(api: str, page: str, monkeypatch, **query: str) -> AppTest:
    monkeypatch.setenv("EVENTSCOPE_API", api)
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()  # AppTest learns the pages from a first run; the link then opens one page, as a browser does
    app.query_params.update(query)
    app.switch_page(f"views/{page}.py").run()
    assert app.title and app.title[0].value == TITLES[page], [t.value for t in app.title]
    return app


MARKDOWN_KINDS = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success")


def markdown_sources(app: AppTest) -> list[str]:
    """The Markdown source of every element Streamlit renders as Markdown, buttons' labels included."""
    sources = [str(e.value) for kind in MARKDOWN_KINDS for e in getattr(app, kind)]
    sources += [b.label for b in app.button]
    sources += [getattr(e.proto, "label", "") for e in app.get("page_link")]
    return sources


UNESCAPED_LINK = re.compile(r"(?<!\\)\]\s*\(")  # `[text](url)` and `![alt](src)`
UNESCAPED_TAG = re.compile(r"(?<!\\)<\s*/?\s*(a|img)\b", re.IGNORECASE)
BARE_LINK = re.compile(r"https?://|www\.|\w@\w", re.IGNORECASE)  # GFM links these in text, escaped or not
CODE_SPAN = re.compile(r"`[^`]*`")
ESCAPE = re.compile(r"\\(.)")


def links_markup(source: str) -> bool:
    """True when this Markdown would render a link, an image or an HTML tag."""
    text = ESCAPE.sub(r"\1", CODE_SPAN.sub("", source))
    return bool(UNESCAPED_LINK.search(source) or UNESCAPED_TAG.search(source) or BARE_LINK.search(text))


def markup_from_data(app: AppTest) -> list[str]:
    """Markdown sources that would render a link, an image or an HTML tag."""
    return [source for source in markdown_sources(app) if links_markup(source)]


def warnings(app: AppTest) -> str:
    return "\n".join(str(w.value) for w in app.warning)


# --- crafted links -------------------------------------------------------------------------------------------

LONG = "x" * 600
CRAFTED = [
    ("traces", {"min_ms": "abc"}, "min_ms", None),
    ("traces", {"min_ms": "nan"}, "min_ms", None),
    ("traces", {"min_ms": "-5"}, "min_ms", None),
    ("traces", {"min_ms": "1e400"}, "min_ms", None),
    ("traces", {"error": "maybe"}, "error", None),
    ("traces", {"trace": "not-a-trace-id"}, "trace", None),
    ("traces", {"event_id": LONG}, "event_id", None),
    ("traces", {"subject": "a\x00b"}, "subject", None),
    ("latency", {"by": "bogus"}, "by", "channel"),
    ("latency", {"p": "p100"}, "p", "p95"),
    ("latency", {"measure": "speed"}, "measure", "delivery"),
    ("event", {"id": "\x1b[31m" + LONG}, "id", None),
    ("ordering", {"stream": "no|such|stream"}, "stream", None),
    ("scenarios", {"scenario": "no_such_scenario"}, "scenario", None),
    ("overview", {"window": "forever"}, "window", None),
    ("overview", {"paused": "maybe"}, "paused", None),
    ("duplicates", {"channel": LONG}, "channel", None),
    ("broker", {"group": "g\nroup"}, "group", None),
    ("dead_letters", {"type": "\x7f"}, "type", None),
    ("instrumentation", {"service": "s\rv"}, "service", None),
]


@pytest.mark.parametrize(("page", "query", "key", "default"), CRAFTED, ids=[f"{c[0]}-{c[2]}" for c in CRAFTED])
def test_a_crafted_link_falls_back_to_the_default_with_a_notice(hostile, page, query, key, default, monkeypatch):
    process, _, _ = hostile
    app = open_page(process.api, page, monkeypatch, **{"window": "all", **query})
    assert not app.exception, app.exception[0].value
    shown = warnings(app)
    assert f"`{key}` parameter" in shown and INVALID in shown, shown
    assert app.query_params.get(key) != query[key], "the bad value is still in the URL"
    if default is not None:
        assert app.query_params.get(key, default) == default
    assert not markup_from_data(app)


def test_a_link_with_every_bad_value_at_once_still_renders(hostile, monkeypatch):
    process, _, _ = hostile
    query = {"min_ms": "abc", "error": "x", "trace": "zz", "window": "x", "paused": "x", "channel": LONG}
    app = open_page(process.api, "traces", monkeypatch, **query)
    assert not app.exception
    assert warnings(app).count(INVALID) == len(query), warnings(app)


@pytest.mark.parametrize("page", PAGES)
def test_a_markdown_link_in_the_channel_filter_stays_text(hostile, page, monkeypatch):
    process, values, _ = hostile
    app = open_page(process.api, page, monkeypatch, window="all", channel=values["channel"])
    assert not app.exception
    assert not markup_from_data(app), markup_from_data(app)


# --- data rendered as text -----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_hostile_names_in_the_data_stay_text_on_every_page(hostile, page, monkeypatch):
    process, _, _ = hostile
    app = open_page(process.api, page, monkeypatch, window="all")
    assert not app.exception
    assert not markup_from_data(app), markup_from_data(app)


def test_a_trace_of_a_hostile_service_shows_its_name_as_text(hostile, monkeypatch):
    process, values, trace_id = hostile
    app = open_page(process.api, "traces", monkeypatch, window="all", trace=trace_id)
    assert f"Trace {trace_id}" in [h.value for h in app.subheader]
    assert any("services:" in c.value and r"\[grp\]" in c.value for c in app.caption), [c.value for c in app.caption]
    assert not markup_from_data(app), markup_from_data(app)


def test_the_event_page_shows_a_hostile_id_verdict_and_group_as_text(hostile, monkeypatch):
    process, values, _ = hostile
    app = open_page(process.api, "event", monkeypatch, id=values["event_id"])
    assert not app.exception
    assert app.info, "no verdict shown"
    assert not markup_from_data(app), markup_from_data(app)


def test_an_unknown_hostile_event_id_is_quoted_as_text(hostile, monkeypatch):
    process, _, _ = hostile
    app = open_page(process.api, "event", monkeypatch, id=f"![gone]({TRAP}/gone.png)")
    assert not app.exception
    assert not markup_from_data(app), markup_from_data(app)


# --- controls ------------------------------------------------------------------------------------------------


def test_scenario_and_redrive_controls_are_off_unless_allowed(hostile, monkeypatch):
    process, _, _ = hostile
    monkeypatch.delenv(CONTROLS, raising=False)
    scenarios = open_page(process.api, "scenarios", monkeypatch)
    assert not [b for b in scenarios.button if b.label == "Start scenario"]
    assert "Starting scenarios is off" in "\n".join(str(i.value) for i in scenarios.info)
    assert CONTROLS in "\n".join(str(i.value) for i in scenarios.info)
    dead = open_page(process.api, "dead_letters", monkeypatch)
    assert not [b for b in dead.button if b.label == "Redrive this event"]
    assert "Redrive is off" in "\n".join(str(i.value) for i in dead.info)


def test_scenario_controls_show_when_allowed(hostile, monkeypatch):
    process, _, _ = hostile
    monkeypatch.setenv(CONTROLS, "1")
    app = open_page(process.api, "scenarios", monkeypatch)
    if any("Scenarios are not available" in str(i.value) for i in app.info):
        pytest.fail("the sample system listed no scenarios")
    assert [b for b in app.button if b.label == "Start scenario"]


def test_a_scenario_never_starts_against_a_redis_that_did_not_allow_it(redis_server, monkeypatch, tmp_path):
    """The slow-consumer scenario runs CONFIG SET on its Redis: with controls off, nothing runs at all."""
    from dashboard.controls import ControlsDisabled
    from dashboard.scenario_runner import ScenarioRunner

    monkeypatch.delenv(CONTROLS, raising=False)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    before = redis_server.client().config_get("client-output-buffer-limit")
    runner = ScenarioRunner(str(tmp_path))
    with pytest.raises(ControlsDisabled):
        runner.start("slow_consumer", 5, 1)
    assert runner.current is None
    assert list(tmp_path.iterdir()) == []
    assert redis_server.client().config_get("client-output-buffer-limit") == before


# --- token and Streamlit configuration -------------------------------------------------------------------------


class TokenRecorder(BaseHTTPRequestHandler):
    """Answers 200 only with ``Authorization: Bearer right``, else 401, as collectors with a token do."""

    seen: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        header = self.headers.get("Authorization")
        TokenRecorder.seen.append(header)
        status, body = (200, {"ok": True}) if header == "Bearer right" else (401, {"error": "unauthorized"})
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def token_server():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), TokenRecorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    TokenRecorder.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_client_sends_the_bearer_token_from_the_environment(token_server, monkeypatch):
    from dashboard.client import ApiClient, api_token

    monkeypatch.setenv("EVENTSCOPE_TOKEN", "right")
    assert ApiClient(token_server, api_token()).get("health") == {"ok": True}
    assert TokenRecorder.seen == ["Bearer right"]


def test_a_refused_token_is_said_plainly(token_server, monkeypatch):
    from dashboard.client import ApiClient, Unauthorized

    with pytest.raises(Unauthorized, match="EVENTSCOPE_TOKEN"):
        ApiClient(token_server, "wrong").get("health")
    monkeypatch.setenv("EVENTSCOPE_TOKEN", "wrong")
    app = open_page(token_server, "broker", monkeypatch)
    assert "require a token" in "\n".join(str(e.value) for e in app.error)
    monkeypatch.delenv("EVENTSCOPE_TOKEN")
    assert ApiClient(token_server).url("health")  # no token: no header sent
    with pytest.raises(Unauthorized):
        ApiClient(token_server).get("health")
    assert TokenRecorder.seen[-1] is None


def test_streamlit_binds_loopback_and_shows_no_error_details():
    """What Streamlit itself reads from .streamlit/config.toml when started from the repository."""
    probe = (
        "from streamlit import config; config.get_config_options(force_reparse=True); "
        "print(config.get_option('server.address'), config.get_option('client.showErrorDetails'))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["127.0.0.1", "none"], done.stdout + done.stderr
