"""Each dashboard page through Streamlit's AppTest, against a real collectors process with known data."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.processes import ROOT, Collectors, free_port, wait_until

pytestmark = pytest.mark.integration

OVERVIEW = str(ROOT / "dashboard" / "pages" / "overview.py")


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


def run_page(path: str, api: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("EVENTSCOPE_API", api)
    app = AppTest.from_file(path, default_timeout=30)
    app.run()
    assert not app.exception, app.exception
    return app


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def test_overview_shows_the_report_numbers(collectors, redis_server, monkeypatch):
    client = redis_server.client()
    for sequence, event_id in ((1, None), (2, None), (2, "e2"), (5, None)):
        client.publish("t.app", event(sequence, event_id))
    client.publish("t.app", b"garbage")
    wait_until(lambda: collectors.get("health")["store"]["bus_messages"] == 5)
    app = run_page(OVERVIEW, collectors.api, monkeypatch)
    assert metrics(app) == {
        "Bus messages": "4",
        "Deliveries": "0",
        "Missing": "2",
        "Duplicates": "1",
        "Out of order": "0",
        "Malformed": "1",
    }
    streams = app.dataframe[0].value
    assert list(streams["gaps"]) == ["3–4"]


def test_overview_empty_state_tells_what_to_do(monkeypatch):
    process = Collectors(redis_url=None)
    try:
        app = run_page(OVERVIEW, process.api, monkeypatch)
        assert any("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318" in info.value for info in app.info)
    finally:
        process.stop()


def test_overview_says_when_the_collectors_are_unreachable(monkeypatch):
    app = run_page(OVERVIEW, f"http://127.0.0.1:{free_port()}", monkeypatch)
    assert "collectors are unreachable" in app.error[0].value
