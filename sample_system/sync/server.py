"""One HTTP service on a free local port, served by uvicorn in a thread and traced by the official ASGI
instrumentation (a SERVER span per request, its parent taken from the caller's ``traceparent``)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0
EXCLUDED_SPANS = ["receive", "send"]  # one SERVER span per request, not one more per ASGI message


def _span_details(scope: dict) -> tuple[str, dict]:
    """``POST /handle/shop.stock``: the paths are few and fixed, so they name the span."""
    return f"{scope.get('method', 'HTTP')} {scope.get('path', '')}", {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Server:
    """Serves ``app`` for one service until ``stop``; ``url`` is where callers reach it."""

    def __init__(self, name: str, app, provider: trace.TracerProvider):
        self.name = name
        traced = OpenTelemetryMiddleware(
            app, tracer_provider=provider, default_span_details=_span_details, exclude_spans=EXCLUDED_SPANS
        )
        self.port = _free_port()
        config = uvicorn.Config(traced, host=HOST, port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"http-{name}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Server:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the {self.name} HTTP service did not start within {START_TIMEOUT_S}s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
