"""The collectors' HTTP listener: OTLP/HTTP ingest and the query API on one port, over the
Collector (collectors/collector.py) that owns the store and the background parts.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from collectors import api
from collectors.collector import Collector
from collectors.config import Config
from collectors.receiver import JSON, SIGNALS_BY_PATH, Reply, error_reply, ingest

log = logging.getLogger(__name__)

RETRY_AFTER_S = "1"
SOCKET_TIMEOUT_S = 30.0  # a sender that stalls mid-body gives its in-flight slot back after this


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "eventscope-collectors"
    collector: Collector  # set on the subclass made by serve()
    timeout = SOCKET_TIMEOUT_S

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError as exc:  # the client went away; nothing to answer
            log.debug("client %s gone: %s", self.address_string(), exc)
            self.close_connection = True

    def _read_body(self, size: int) -> bytes | None:
        """The whole body, or None when the client stalled or left before sending it."""
        try:
            body = self.rfile.read(size)
        except OSError:
            body = b""
        if len(body) < size:
            self.close_connection = True
            return None
        return body

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
        signal = SIGNALS_BY_PATH.get(url.path)
        length = self.headers.get("Content-Length")
        limit = self.collector.config.max_body_bytes
        if signal is None:
            self.close_connection = True
            return self._send_json(404, {"error": f"no such endpoint: {url.path}"})
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            return self._send(error_reply(411, JSON, "Content-Length is required"))
        size = int(length)
        if size > limit:
            self.close_connection = True  # the body is not read; the connection cannot be reused
            return self._send(error_reply(413, JSON, f"body exceeds {limit} bytes"))
        if not self.collector.admission.try_enter(size):
            self.close_connection = True
            return self._send(error_reply(429, JSON, "too many exports in flight", (("Retry-After", RETRY_AFTER_S),)))
        try:
            body = self._read_body(size)
            if body is None:
                return None
            headers = self.headers
            reply = ingest(
                self.collector.store, signal, body, headers.get("Content-Type"), headers.get("Content-Encoding"), limit
            )
        finally:
            self.collector.admission.leave(size)
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
