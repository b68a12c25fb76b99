"""The collectors process: one HTTP listener for OTLP ingest and the query API, OTLP/gRPC, the bus
tap and broker stats threads, retention, and the store they share. Only this process opens the
DuckDB file.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from collectors import api, queries, retention
from collectors.admission import Admission
from collectors.broker_stats import BrokerStats
from collectors.bus_tap import BusTap
from collectors.config import Config
from collectors.receiver import JSON, SIGNALS_BY_PATH, Reply, error_reply, ingest
from collectors.store import Store, StoreBusy

log = logging.getLogger(__name__)

RETRY_AFTER_S = "1"
SOCKET_TIMEOUT_S = 30.0  # a sender that stalls mid-body gives its in-flight slot back after this
SINK_BACKOFF_MAX_S = 1.0


class Collector:
    """Everything the request handlers need: the store, the tap, the broker poller, the limits."""

    def __init__(self, config: Config):
        self.config = config
        self.store = Store(config.store_path, config.queue_limit, config.store_memory_limit)
        self.stop = threading.Event()
        self.admission = Admission(config.max_in_flight, config.max_in_flight_bytes)
        self.tap: BusTap | None = None
        self.broker: BrokerStats | None = None
        self.grpc = None
        self.grpc_error: str | None = None
        self.retention_deleted: dict[str, int] = {}
        if config.redis_url:
            self.tap = BusTap(config.redis_url, config.tap_patterns, self._tap_sink)
            self._thread("bus-tap", self.tap.run, self.stop)
        if config.redis_url and config.broker_poll_s:
            self.broker = BrokerStats(config.redis_url, config.broker_poll_s, self._broker_sink)
            self._thread("broker-stats", self.broker.run, self.stop)
        if config.retention_age_s or config.retention_max_spans:
            self._thread("retention", self._retain_forever)
        if config.grpc_listen:
            self._start_grpc(*config.grpc_listen)

    @staticmethod
    def _thread(name: str, target, *args) -> None:
        threading.Thread(target=target, args=args, name=name, daemon=True).start()

    def _start_grpc(self, host: str, port: int) -> None:
        from collectors.grpc_server import start_grpc  # grpcio loads only when gRPC is on

        try:
            self.grpc = start_grpc(self.store, host, port, self.config.max_body_bytes, self.config.max_in_flight)
        except OSError as exc:  # another process holds the port: HTTP ingest still works
            self.grpc_error = str(exc)
            log.warning("OTLP/gRPC disabled: %s", exc)

    def _submit_blocking(self, tables: dict[str, list[tuple]]) -> None:
        delay = 0.05
        while not self.stop.is_set():
            try:
                self.store.submit_tables(tables)
                return
            except StoreBusy:  # block the reader: Redis buffers meanwhile, which is the real backpressure
                self.stop.wait(delay)
                delay = min(delay * 2, SINK_BACKOFF_MAX_S)

    def _tap_sink(self, rows: list[tuple]) -> None:
        self._submit_blocking({"bus_messages": rows})

    def _broker_sink(self, rows_by_table: dict[str, list[tuple]]) -> None:
        self._submit_blocking({table: rows for table, rows in rows_by_table.items() if rows})

    def retain(self) -> dict[str, int]:
        """Apply the retention limits once, on the writer thread; rows deleted per table."""
        config = self.config
        job = self.store.submit_action(
            lambda cursor: retention.enforce(cursor, time.time_ns(), config.retention_age_s, config.retention_max_spans)
        )
        job.wait()
        return job.result

    def _retain_forever(self) -> None:
        while not self.stop.wait(self.config.retention_interval_s):
            try:
                self.retention_deleted = self.retain()
            except StoreBusy:
                continue
            except Exception:
                log.exception("retention failed")
            if any(self.retention_deleted.values()):
                log.info("retention deleted %s", self.retention_deleted)

    def health(self) -> dict:
        """The /api/v1/health answer: store counts and each part's state."""
        cursor = self.store.cursor()
        try:
            store = queries.counts(cursor)
        finally:
            cursor.close()
        config = self.config
        grpc_address = f"{config.grpc_listen[0]}:{config.grpc_listen[1]}" if config.grpc_listen else None
        return {
            "status": "ok",
            "store": store,
            "tap": self.tap.status() if self.tap else None,
            "broker": self.broker.status() if self.broker else None,
            "ingest": {**self.admission.status(), "write_queue": self.store.queued()},
            "grpc": {"listen": grpc_address, "listening": self.grpc is not None, "error": self.grpc_error},
            "retention": {
                "max_age_s": config.retention_age_s,
                "max_spans": config.retention_max_spans,
                "last_deleted": self.retention_deleted,
            },
        }

    def close(self) -> None:
        """Stop the threads and the gRPC server, then commit what is queued and close the store."""
        self.stop.set()
        if self.grpc is not None:
            self.grpc.stop(grace=5).wait(10)
        self.store.close()


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
