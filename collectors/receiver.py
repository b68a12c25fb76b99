"""The OTLP/HTTP trace receiver: decode an export request, commit it, then answer.

The answer follows the OTLP/HTTP spec: 200 with an ExportTraceServiceResponse only after the spans
are committed; 400 for a body that cannot be decoded; 413 past the size limit; 415 for a content
type other than protobuf or JSON; 503 with Retry-After when the store cannot keep up, so the
sender's own retry does the rest.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import zlib

from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collectors.otlp import OtlpDecodeError, decode_json, decode_protobuf
from collectors.store import Store, StoreBusy

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RETRY_AFTER_S = "1"
COMMIT_TIMEOUT_S = 30.0


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def error_reply(status: int, media: str, message: str, headers: tuple = ()) -> Reply:
    """An OTLP error answer: a google.rpc.Status in the request's encoding."""
    if media == PROTOBUF:
        return Reply(status, PROTOBUF, Status(code=status, message=message).SerializeToString(), headers)
    return Reply(status, JSON, json.dumps({"code": status, "message": message}).encode(), headers)


def _inflate(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = inflater.decompress(body, limit + 1)
    if len(data) > limit:
        raise OverflowError
    if not inflater.eof:
        raise gzip.BadGzipFile("truncated gzip body")
    return data


def decode_body(body: bytes, content_type: str | None, content_encoding: str | None, limit: int):
    """Rows from a request body, or a Reply explaining why not."""
    media = _media_type(content_type)
    if media not in (PROTOBUF, JSON):
        return error_reply(415, JSON, f"unsupported content type {media or '(none)'!r}: use {PROTOBUF} or {JSON}")
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        try:
            body = _inflate(body, limit)
        except OverflowError:
            return error_reply(413, media, f"decompressed body exceeds {limit} bytes")
        except (zlib.error, gzip.BadGzipFile, EOFError) as exc:
            return error_reply(400, media, f"invalid gzip body: {exc}")
    elif encoding != "identity":
        return error_reply(415, media, f"unsupported content encoding {encoding!r}")
    try:
        return decode_protobuf(body) if media == PROTOBUF else decode_json(body)
    except OtlpDecodeError as exc:
        return error_reply(400, media, str(exc))


def _success(media: str) -> Reply:
    if media == PROTOBUF:
        return Reply(200, PROTOBUF, ExportTraceServiceResponse().SerializeToString())
    return Reply(200, JSON, b"{}")


def ingest_traces(store: Store, body: bytes, content_type: str | None, content_encoding: str | None, limit: int):
    """Decode, commit, answer. Never raises for bad input."""
    media = _media_type(content_type)
    rows = decode_body(body, content_type, content_encoding, limit)
    if isinstance(rows, Reply):
        return rows
    if not rows:
        return _success(media)
    busy = (("Retry-After", RETRY_AFTER_S),)
    try:
        committed = store.submit("otel_traces", rows).wait(COMMIT_TIMEOUT_S)
    except StoreBusy:
        return error_reply(503, media, "store is busy; retry later", busy)
    except Exception as exc:  # the commit failed: the sender must retry, nothing was acknowledged
        return error_reply(503, media, f"store commit failed: {type(exc).__name__}", busy)
    if not committed:
        return error_reply(503, media, "store commit timed out; retry later", busy)
    return _success(media)
