"""The API client tells the pages which calm message to show: unreachable, not found (an unknown id, or an
endpoint these collectors lack: a bug the page names, never hides), refused, or failed. A real HTTP server
answers as the collectors would."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dashboard.client import ApiClient, ApiUnavailable, BadRequest, NotFound, ServerError
from tests.processes import free_port

ANSWERS = {
    "/api/v1/overview": (200, {"deliveries": 3}),
    "/api/v1/flow": (404, {"error": "no such endpoint: /api/v1/flow"}),
    "/api/v1/events/e9": (404, {"error": "event e9 not found"}),
    "/api/v1/loss": (400, {"error": "since_ns must be an integer"}),
    "/api/v1/latency": (500, {"error": "query failed; see the collectors log"}),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        status, payload = ANSWERS[self.path.split("?")[0]]
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def client():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield ApiClient(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


def test_an_answer_is_decoded(client):
    assert client.get("overview", {"since_ns": 1, "channel": ""}) == {"deliveries": 3}


@pytest.mark.parametrize(
    ("path", "error", "text"),
    [
        ("flow", NotFound, "no such endpoint: /api/v1/flow"),
        ("events/e9", NotFound, "event e9 not found"),
        ("loss", BadRequest, "since_ns must be an integer"),
        ("latency", ServerError, "answered 500"),
    ],
)
def test_errors_say_which_message_to_show(client, path, error, text):
    with pytest.raises(error, match=text):
        client.get(path)


def test_nothing_listening_is_unreachable():
    with pytest.raises(ApiUnavailable, match="cannot reach the collectors") as caught:
        ApiClient(f"http://127.0.0.1:{free_port()}").get("overview")
    assert type(caught.value) is ApiUnavailable
