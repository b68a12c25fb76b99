"""OTLP over gRPC (the Python exporter's default, port 4317), sharing the store with OTLP/HTTP.

Each Export call answers OK only after its rows are committed. A store that cannot keep up answers
UNAVAILABLE, which the OTLP exporters retry with backoff; concurrent calls beyond the limit get
RESOURCE_EXHAUSTED from grpcio itself, and a message past the body limit is refused by grpcio
before it is decoded, so memory stays bounded.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from collectors.receiver import LOGS, METRICS, TRACES, Signal, StoreUnavailable, commit
from collectors.store import Store

log = logging.getLogger(__name__)

GRPC_WORKERS = 8


class _Exporter:
    """The Export method of one OTLP service."""

    def __init__(self, store: Store, signal: Signal):
        self._store = store
        self._signal = signal

    def Export(self, request, context):  # noqa: N802 - the gRPC method name
        """Store the request's rows; answer once they are committed, UNAVAILABLE if they cannot be."""
        decoded = self._signal.rows(request)
        try:
            commit(self._store, self._signal.table, decoded)
        except StoreUnavailable as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return self._signal.response(decoded)


class TraceServicer(_Exporter, trace_service_pb2_grpc.TraceServiceServicer):
    """opentelemetry.proto.collector.trace.v1.TraceService."""


class MetricsServicer(_Exporter, metrics_service_pb2_grpc.MetricsServiceServicer):
    """opentelemetry.proto.collector.metrics.v1.MetricsService."""


class LogsServicer(_Exporter, logs_service_pb2_grpc.LogsServiceServicer):
    """opentelemetry.proto.collector.logs.v1.LogsService."""


def start_grpc(store: Store, host: str, port: int, max_message_bytes: int, max_in_flight: int) -> grpc.Server:
    """Start the OTLP gRPC server; raises OSError when the address cannot be bound."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=GRPC_WORKERS, thread_name_prefix="otlp-grpc"),
        maximum_concurrent_rpcs=max_in_flight,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second collectors on the same port must fail, not share it
        ],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceServicer(store, TRACES), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(MetricsServicer(store, METRICS), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(LogsServicer(store, LOGS), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from None
    if not bound:
        raise OSError(f"cannot listen on {address}")
    server.start()
    log.info("OTLP/gRPC listening on %s", address)
    return server
