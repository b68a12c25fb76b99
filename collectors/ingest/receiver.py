"""The OTLP receiver logic shared by HTTP and gRPC: decode an export request, commit it, then answer.

The answer follows the OTLP spec: success only after the rows are committed; partial success
(``rejected_spans`` / ``rejected_data_points`` / ``rejected_log_records`` and an ``error_message``)
when some items were unusable; 400 for a body that cannot be decoded; 413 past the size limit; 415
for a content type other than protobuf or JSON; 503 with Retry-After when the store cannot keep up,
so the sender's own retry does the rest.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import threading
import zlib
from collections.abc import Callable

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from collectors.ingest import wire
from collectors.ingest.logs import log_rows
from collectors.ingest.metrics import metric_rows
from collectors.ingest.otlp import Decoded, OtlpDecodeError, parse_request, trace_rows
from collectors.storage.store import Job, Store, StoreBusy, batch_fits, row_checker

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RETRY_AFTER_S = "1"
COMMIT_TIMEOUT_S = 30.0
GZIP_MAGIC = b"\x1f\x8b"  # how a gzip member starts (RFC 1952): another member may follow the first


DECODERS_AT_ONCE = 1
"""Export requests decoded at the same time. Decoding holds the interpreter lock nearly throughout, so two at once
take as long as one after the other, and the switching between them costs CPU (bench.ingest: about a fifth more
CPU a span with four senders decoded at once)."""
DECODING = threading.BoundedSemaphore(DECODERS_AT_ONCE)
"""Held while a request is decoded into rows (OTLP/HTTP and gRPC); it is taken after the batch is announced."""

_CHECKED_TABLES = ("otel_traces", "otel_metrics", "otel_logs")
_CHECKERS = {table: row_checker(table) for table in _CHECKED_TABLES}
_FITS = {table: batch_fits(table) for table in _CHECKED_TABLES}


def keep_storable(table: str, decoded: Decoded) -> Decoded:
    """Reject the rows whose values the store's columns cannot hold (and the links of rejected spans)."""
    if _FITS[table](decoded.rows):
        return decoded
    problem_of = _CHECKERS[table]
    problems = [problem_of(row) for row in decoded.rows]
    if not any(problems):
        return decoded
    kept = Decoded([], decoded.rejected, decoded.error_message)
    for row, problem in zip(decoded.rows, problems, strict=True):
        if problem:
            kept.reject(problem)
        else:
            kept.rows.append(row)
    if decoded.links:
        spans = {(row[1], row[2]) for row in kept.rows}
        kept.links = [link for link in decoded.links if (link[0], link[1]) in spans]
    return kept


@dataclasses.dataclass(frozen=True)
class Signal:
    """One OTLP signal: its request and response messages, its rows, its table."""

    name: str
    path: str
    table: str
    request_type: type[Message]
    response_type: type[Message]
    partial_type: type[Message]
    rejected_field: str
    rows: Callable[[Message], Decoded]

    def decode(self, request: Message) -> Decoded:
        """Rows of a parsed request; items the store could not hold are rejected here, one by one."""
        return keep_storable(self.table, self.rows(request))

    def response(self, decoded: Decoded) -> Message:
        """The export response, with partial success when something was rejected."""
        if not decoded.rejected:
            return self.response_type()
        partial = self.partial_type(error_message=decoded.error_message)
        setattr(partial, self.rejected_field, decoded.rejected)
        return self.response_type(partial_success=partial)


TRACES = Signal(
    "traces",
    "/v1/traces",
    "otel_traces",
    wire.ExportTraceServiceRequest,  # span attributes read from their encoded bytes (collectors/ingest/wire.py)
    trace_pb.ExportTraceServiceResponse,
    trace_pb.ExportTracePartialSuccess,
    "rejected_spans",
    trace_rows,
)
METRICS = Signal(
    "metrics",
    "/v1/metrics",
    "otel_metrics",
    metrics_pb.ExportMetricsServiceRequest,
    metrics_pb.ExportMetricsServiceResponse,
    metrics_pb.ExportMetricsPartialSuccess,
    "rejected_data_points",
    metric_rows,
)
LOGS = Signal(
    "logs",
    "/v1/logs",
    "otel_logs",
    logs_pb.ExportLogsServiceRequest,
    logs_pb.ExportLogsServiceResponse,
    logs_pb.ExportLogsPartialSuccess,
    "rejected_log_records",
    log_rows,
)
SIGNALS_BY_PATH = {signal.path: signal for signal in (TRACES, METRICS, LOGS)}


@dataclasses.dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, content type, body and extra headers."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    message: str = ""  # an error's message, or the first reason for rejected items (for the log)
    rejected: int = 0  # items rejected through partial success


class StoreUnavailable(RuntimeError):
    """The rows were not committed (queue full, commit failed or too slow); the sender should retry."""


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower case, without parameters."""
    return (content_type or "").split(";")[0].strip().lower()


def error_reply(status: int, media: str, message: str, headers: tuple = ()) -> Reply:
    """An OTLP error answer: a google.rpc.Status in the request's encoding."""
    if media == PROTOBUF:
        return Reply(status, PROTOBUF, Status(code=status, message=message).SerializeToString(), headers, message)
    return Reply(status, JSON, json.dumps({"code": status, "message": message}).encode(), headers, message)


def busy_reply(media: str, message: str) -> Reply:
    """503 with Retry-After: nothing was acknowledged, the sender retries later."""
    return error_reply(503, media, message, (("Retry-After", RETRY_AFTER_S),))


def _inflate(body: bytes, limit: int) -> bytes:
    """The gzip body decompressed, member after member; anything after the last member is an error."""
    data, rest = b"", body
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        data += inflater.decompress(rest, limit + 1 - len(data))
        if len(data) > limit:
            raise OverflowError
        if not inflater.eof:
            raise gzip.BadGzipFile("truncated gzip body")
        rest = inflater.unused_data
        if not rest:
            return data
        if not rest.startswith(GZIP_MAGIC):
            raise gzip.BadGzipFile(f"{len(rest)} bytes of trailing garbage after the gzip data")


def _encoding(content_encoding: str | None) -> str:
    return (content_encoding or "identity").strip().lower()


def unsupported(content_type: str | None, content_encoding: str | None, headers: tuple = ()) -> Reply | None:
    """A 415 for a content type or encoding the receiver does not take, known before the body is read."""
    media = media_type(content_type)
    if media not in (PROTOBUF, JSON):
        message = f"unsupported content type {media or '(none)'!r}: use {PROTOBUF} or {JSON}"
        return error_reply(415, JSON, message, headers)
    encoding = _encoding(content_encoding)
    if encoding not in ("identity", "gzip"):
        return error_reply(415, media, f"unsupported content encoding {encoding!r}", headers)
    return None


def _plain_body(body: bytes, media: str, content_encoding: str | None, limit: int) -> bytes | Reply:
    if _encoding(content_encoding) == "identity":
        return body
    try:
        return _inflate(body, limit)
    except OverflowError:
        return error_reply(413, media, f"decompressed body exceeds {limit} bytes")
    except (zlib.error, gzip.BadGzipFile, EOFError) as exc:
        return error_reply(400, media, f"invalid gzip body: {exc}")


def decode_body(signal: Signal, body: bytes, content_type: str | None, content_encoding: str | None, limit: int):
    """Decoded rows from a request body, or a Reply explaining why not."""
    refusal = unsupported(content_type, content_encoding)
    if refusal is not None:
        return refusal
    media = media_type(content_type)
    plain = _plain_body(body, media, content_encoding, limit)
    if isinstance(plain, Reply):
        return plain
    try:
        return signal.decode(parse_request(plain, media == JSON, signal.request_type))
    except OtlpDecodeError as exc:
        return error_reply(400, media, str(exc))


def submit(store: Store, table: str, decoded: Decoded) -> Job | None:
    """Queue decoded rows for the next group commit (None when there are none); StoreUnavailable when full."""
    if not decoded.rows:
        return None
    tables = {table: decoded.rows, "span_links": decoded.links} if decoded.links else {table: decoded.rows}
    try:
        return store.submit_tables(tables)
    except StoreBusy:
        raise StoreUnavailable("store is busy; retry later") from None


def wait(job: Job | None) -> None:
    """Return only once the submitted rows are durable; StoreUnavailable otherwise."""
    if job is None:
        return
    try:
        committed = job.wait(COMMIT_TIMEOUT_S)
    except Exception as exc:  # the commit failed: nothing was acknowledged
        raise StoreUnavailable(f"store commit failed: {type(exc).__name__}") from None
    if not committed:
        raise StoreUnavailable("store commit timed out; retry later")


def commit(store: Store, table: str, decoded: Decoded) -> None:
    """Commit decoded rows and return only once they are durable; StoreUnavailable otherwise."""
    wait(submit(store, table, decoded))


def _success(signal: Signal, media: str, decoded: Decoded) -> Reply:
    response = signal.response(decoded)
    if media == PROTOBUF:
        body = response.SerializeToString()
    else:
        body = json.dumps(json_format.MessageToDict(response)).encode()
    return Reply(200, media, body, message=decoded.error_message, rejected=decoded.rejected)


def ingest(store: Store, signal: Signal, body: bytes, content_type: str | None, encoding: str | None, limit: int):
    """Decode, commit, answer one OTLP/HTTP export. Never raises for bad input.

    The batch is announced to the store while it waits for its turn to be decoded (``DECODING``) and while it is
    decoded, so that exports that arrive together share a group commit.
    """
    media = media_type(content_type)
    try:
        with store.coming(), DECODING:
            decoded = decode_body(signal, body, content_type, encoding, limit)
            if isinstance(decoded, Reply):
                return decoded
            job = submit(store, signal.table, decoded)
        wait(job)
    except StoreUnavailable as exc:
        return busy_reply(media, str(exc))
    return _success(signal, media, decoded)
