"""The collectors process: one HTTP listener for OTLP ingest and the query API, the bus tap
thread, and the store they share. Only this process opens the DuckDB file.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from collectors import api, queries
from collectors.bus_tap import BusTap
from collectors.config import Config
from collectors.receiver import JSON, Reply, error_reply, ingest_traces
from collectors.store import Store, StoreBusy

log = logging.getLogger(__name__)

OTLP_TRACES_PATH = "/v1/traces"
MAX_INGEST_IN_FLIGHT = 32


class Collector:
    """Everything the request handlers need: the store, the tap, the limits."""

    def __init__(self, config: Config):
        self.config = config
        self.store = Store(config.store_path, config.queue_limit)
        self.stop = threading.Event()
        self.tap: BusTap | None = None
        self.ingest_slots = threading.BoundedSemaphore(MAX_INGEST_IN_FLIGHT)
        if config.redis_url:
            self.tap = BusTap(config.redis_url, config.tap_patterns, self._tap_sink)
            threading.Thread(target=self.tap.run, args=(self.stop,), name="bus-tap", daemon=True).start()

    def _tap_sink(self, rows: list[tuple]) -> None:
        delay = 0.05
        while not self.stop.is_set():
            try:
                self.store.submit("bus_messages", rows)
                return
            except StoreBusy:  # block the tap: Redis buffers meanwhile, which is the real backpressure
                self.stop.wait(delay)
                delay = min(delay * 2, 1.0)

    def health(self) -> dict:
        cursor = self.store.cursor()
        try:
            store = queries.counts(cursor)
        finally:
            cursor.close()
        return {"status": "ok", "store": store, "tap": self.tap.status() if self.tap else None}

    def close(self) -> None:
        self.stop.set()
        self.store.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "eventscope-collectors"
    collector: Collector  # set on the subclass made by serve()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _send_json(self, status: int, payload: dict) -> None:
        self._send(Reply(status, JSON, json.dumps(payload, default=str).encode()))

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == api.API_PREFIX + "/health":
            return self._send_json(200, self.collector.health())
        cursor = self.collector.store.cursor()
        try:
            status, payload = api.handle(cursor, url.path, urllib.parse.parse_qs(url.query))
        except Exception:
            log.exception("query failed: %s", self.path)
            status, payload = 500, {"error": "query failed; see the collectors log"}
        finally:
            cursor.close()
        self._send_json(status, payload)

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        content_type = self.headers.get("Content-Type")
        length = self.headers.get("Content-Length")
        limit = self.collector.config.max_body_bytes
        if url.path != OTLP_TRACES_PATH:
            self.close_connection = True
            return self._send_json(404, {"error": f"no such endpoint: {url.path}"})
        if length is None or not length.isdigit():
            self.close_connection = True
            return self._send(error_reply(411, JSON, "Content-Length is required"))
        if int(length) > limit:
            self.close_connection = True  # the body is not read; the connection cannot be reused
            return self._send(error_reply(413, JSON, f"body exceeds {limit} bytes"))
        body = self.rfile.read(int(length))
        if not self.collector.ingest_slots.acquire(blocking=False):
            return self._send(error_reply(429, JSON, "too many exports in flight", (("Retry-After", "1"),)))
        try:
            reply = ingest_traces(self.collector.store, body, content_type, self.headers.get("Content-Encoding"), limit)
        finally:
            self.collector.ingest_slots.release()
        self._send(reply)


def serve(config: Config) -> None:
    """Run until SIGINT/SIGTERM; the store is closed cleanly on the way out."""
    collector = Collector(config)
    handler = type("BoundHandler", (Handler,), {"collector": collector})
    httpd = ThreadingHTTPServer((config.host, config.port), handler)
    httpd.daemon_threads = True

    def shutdown(signum, frame) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info("collectors listening on http://%s:%d (store %s)", config.host, config.port, config.store_path)
    print(f"eventscope collectors: http://{config.host}:{config.port} store={config.store_path}", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        collector.close()
