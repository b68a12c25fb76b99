"""OTLP over gRPC (the Python exporter's default, port 4317), sharing the store with OTLP/HTTP.

Each Export call answers OK only after its rows are committed. A store that cannot keep up answers
UNAVAILABLE, which the OTLP exporters retry with backoff; concurrent calls beyond the limit get
RESOURCE_EXHAUSTED from grpcio itself, and a message past the body limit is refused by grpcio
before it is decoded, so memory stays bounded. The request bytes are parsed here rather than by
grpcio, so that a message that does not decode gets INVALID_ARGUMENT saying why (grpcio's own
deserializer would answer INTERNAL and log a traceback), counted and logged like an HTTP refusal.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from collectors.ingest.bearer import Bearer
from collectors.ingest.otlp import OtlpDecodeError, parse_request
from collectors.ingest.receiver import DECODING, LOGS, METRICS, TRACES, Signal, StoreUnavailable, commit
from collectors.ingest.refusals import Refusals
from collectors.storage.store import Store

log = logging.getLogger(__name__)

GRPC_WORKERS = 8
SERVICES = (
    (trace_service_pb2, "TraceService", TRACES),
    (metrics_service_pb2, "MetricsService", METRICS),
    (logs_service_pb2, "LogsService", LOGS),
)


class _Exporter:
    """The Export method of one OTLP service, on the raw request bytes."""

    def __init__(self, store: Store, signal: Signal, bearer: Bearer, refusals: Refusals):
        self._store = store
        self._signal = signal
        self._bearer = bearer
        self._refusals = refusals

    def _refuse(self, context, reason: str, code: grpc.StatusCode, message: str) -> None:
        self._refusals.refuse(reason, context.peer(), message)
        context.abort(code, message)

    def _authorization(self, context) -> str | None:
        return next((value for key, value in context.invocation_metadata() if key == "authorization"), None)

    def export(self, body: bytes, context):
        """Store the request's rows; answer once they are committed, UNAVAILABLE if they cannot be."""
        if not self._bearer.allows(self._authorization(context)):
            self._refuse(context, "unauthorized", grpc.StatusCode.UNAUTHENTICATED, "bearer token required")
        try:
            with DECODING:
                decoded = self._signal.decode(parse_request(body, False, self._signal.request_type))
        except OtlpDecodeError as exc:
            self._refuse(context, "undecodable", grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            commit(self._store, self._signal.table, decoded)
        except StoreUnavailable as exc:
            self._refuse(context, "store_unavailable", grpc.StatusCode.UNAVAILABLE, str(exc))
        if decoded.rejected:
            self._refusals.reject_items(decoded.rejected, context.peer(), decoded.error_message)
        return self._signal.response(decoded)


def _handler(module, service: str, exporter: _Exporter) -> grpc.GenericRpcHandler:
    full_name = module.DESCRIPTOR.services_by_name[service].full_name
    method = grpc.unary_unary_rpc_method_handler(
        exporter.export,
        request_deserializer=None,  # the bytes as they came; export() parses them
        response_serializer=lambda response: response.SerializeToString(),
    )
    return grpc.method_handlers_generic_handler(full_name, {"Export": method})


def start_grpc(
    store: Store, host: str, port: int, max_message_bytes: int, max_in_flight: int, bearer: Bearer, refusals: Refusals
) -> grpc.Server:
    """Start the OTLP gRPC server; raises OSError when the address cannot be bound."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=GRPC_WORKERS, thread_name_prefix="otlp-grpc"),
        maximum_concurrent_rpcs=max_in_flight,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second collectors on the same port must fail, not share it
        ],
    )
    server.add_generic_rpc_handlers(
        [_handler(module, service, _Exporter(store, signal, bearer, refusals)) for module, service, signal in SERVICES]
    )
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
