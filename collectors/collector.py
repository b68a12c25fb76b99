"""The collectors process's parts, apart from HTTP: the store, the bus tap and broker stats threads,
retention, OTLP/gRPC, and the health answer that reports on all of them. Only this process opens the
DuckDB file.
"""

from __future__ import annotations

import logging
import threading
import time

from collectors import queries, retention
from collectors.admission import Admission
from collectors.broker_stats import BrokerStats
from collectors.bus_tap import BusTap
from collectors.config import Config
from collectors.store import Store, StoreBusy

log = logging.getLogger(__name__)

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
