"""The collectors process's parts, apart from HTTP: the store, the bus tap and broker stats threads
(supervised: restarted when they stop), retention, OTLP/gRPC, and the health answer that reports on
all of them, ``degraded`` with the reasons whenever a part is down. Only this process opens the
DuckDB file (a ClickHouse store takes any number of collectors processes).
"""

from __future__ import annotations

import logging
import threading
import time

from collectors.bus.broker_stats import BrokerStats
from collectors.bus.bus_tap import BusTap
from collectors.bus.tap_writer import Commit
from collectors.config import Config
from collectors.ingest.admission import Admission
from collectors.ingest.bearer import Bearer
from collectors.ingest.refusals import Refusals
from collectors.storage import queries, spec
from collectors.storage.store import StoreBusy
from collectors.supervisor import Supervisor

log = logging.getLogger(__name__)

SINK_BACKOFF_MAX_S = 1.0
STOP_WAIT_S = 10.0  # how long close() waits for the tap and the poller to hand over their last rows
OK = "ok"
DEGRADED = "degraded"


class Collector:
    """Everything the request handlers need: the store, the tap, the broker poller, the limits."""

    def __init__(self, config: Config):
        self.config = config
        self.store_spec = spec.parse(config.store_path)
        self.store = spec.open_store(self.store_spec, config.queue_limit, config.store_memory_limit)
        self.stop = threading.Event()
        self.supervisor = Supervisor(self.stop)
        self.admission = Admission(config.max_in_flight, config.max_in_flight_bytes)
        self.refusals = Refusals()
        self.tap: BusTap | None = None
        self.broker: BrokerStats | None = None
        self.grpc = None
        self.grpc_error: str | None = None
        self.retention_deleted: dict[str, int] = {}
        if config.redis_url:
            self.tap = BusTap(
                config.redis_url,
                config.tap_patterns,
                self._tap_submit,
                cluster=config.redis_cluster,
                shard_channels=config.tap_shard_channels,
            )
            self.supervisor.start("bus tap", self.tap.run)
        if config.redis_url and config.broker_poll_s:
            self.broker = BrokerStats(
                config.redis_url, config.broker_poll_s, self._broker_sink, cluster=config.redis_cluster
            )
            self.supervisor.start("broker stats", self.broker.run)
        if config.retention_age_s or config.retention_max_spans:
            self._thread("retention", self._retain_forever)
        if config.grpc_listen and not self.store.read_mode:  # read mode: telemetry goes to the pipeline's Collector
            self._start_grpc(*config.grpc_listen)

    @staticmethod
    def _thread(name: str, target, *args) -> None:
        threading.Thread(target=target, args=args, name=name, daemon=True).start()

    def _start_grpc(self, host: str, port: int) -> None:
        from collectors.ingest.grpc_server import start_grpc  # grpcio loads only when gRPC is on

        try:
            config = self.config
            bearer = Bearer(config.token)
            self.grpc = start_grpc(
                self.store, host, port, config.max_body_bytes, config.max_in_flight, bearer, self.refusals
            )
        except OSError as exc:  # another process holds the port: HTTP ingest still works
            self.grpc_error = str(exc)
            log.warning("OTLP/gRPC disabled: %s", exc)

    def _submit_blocking(self, tables: dict[str, list[tuple]]) -> Commit | None:
        """The queued job; None if the collectors stopped while the write queue was full."""
        delay = 0.05
        while not self.stop.is_set():
            try:
                return self.store.submit_tables(tables)
            except StoreBusy:  # block the reader: Redis buffers meanwhile, which is the real backpressure
                self.stop.wait(delay)
                delay = min(delay * 2, SINK_BACKOFF_MAX_S)
        try:  # stopping: the tap's last rows still get their place if there is one
            return self.store.submit_tables(tables)
        except StoreBusy:
            return None

    def _tap_submit(self, rows: list[tuple]) -> Commit | None:
        return self._submit_blocking({"bus_messages": rows})

    def _broker_sink(self, rows_by_table: dict[str, list[tuple]]) -> None:
        self._submit_blocking({table: rows for table, rows in rows_by_table.items() if rows})

    def retain(self) -> dict[str, int]:
        """Apply the retention limits once, on the writer thread; rows deleted per table."""
        config = self.config
        job = self.store.retain(time.time_ns(), config.retention_age_s, config.retention_max_spans)
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

    def problems(self) -> list[str]:
        """Why any part is down, reconnecting, or failed to store rows; empty when all is well.

        A part still making its first connection is not a problem yet: it becomes one (reconnecting)
        as soon as that attempt fails, within the 2 s connect timeout.
        """
        problems = self.supervisor.problems()
        for part in (self.tap, self.broker):
            if part is not None:
                problems += part.problems()
        if self.grpc_error is not None:
            problems.append(f"OTLP/gRPC is not listening ({self.grpc_error})")
        return problems

    def health(self) -> dict:
        """The /api/v1/health answer: ok or degraded (with the problems), store counts and each part's state."""
        reader = self.store.reader()
        try:
            store = queries.counts(reader)
        finally:
            reader.close()
        config = self.config
        grpc_address = f"{config.grpc_listen[0]}:{config.grpc_listen[1]}" if config.grpc_listen else None
        problems = self.problems()
        parts = {part.name: part.status() for part in self.supervisor.parts.values()}
        return {
            "status": DEGRADED if problems else OK,
            "problems": problems,
            "store": {**store, "engine": self.store.engine, "location": self.store_spec.describe()},
            "tap": {**self.tap.status(), "supervisor": parts["bus tap"]} if self.tap else None,
            "broker": {**self.broker.status(), "supervisor": parts["broker stats"]} if self.broker else None,
            "ingest": {**self.admission.status(), **self.refusals.status(), "write_queue": self.store.queued()},
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
        self.supervisor.join(STOP_WAIT_S)
        self.store.close()
