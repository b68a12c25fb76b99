"""The collectors' HTTP listener: OTLP/HTTP ingest and the query API on one port, over the
Collector (collectors/collector.py) that owns the store and the background parts.

uvicorn (its h11 protocol) speaks HTTP/1.1: keep-alive, chunked bodies, ``Expect: 100-continue``
(the 100 goes out only once the body is wanted, so a refused request never sends it), strict
framing (two different Content-Length headers are a 400). The ASGI app here admits an export on its
declared size before reading it, reads it within one deadline for the whole body, then decodes and
waits for the commit in a bounded thread pool: the event loop never blocks, and 200 still means
committed. Query API answers are computed in a pool of their own, so a slow query cannot hold ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from collectors.analyses import report
from collectors.collector import Collector
from collectors.config import Config
from collectors.ingest.bearer import Bearer
from collectors.ingest.receiver import SIGNALS_BY_PATH, Reply, Signal, error_reply, ingest, media_type, unsupported
from collectors.ingest.refusals import Refusals
from collectors.serving import answers, api
from collectors.storage.reader import Reader
from collectors.storage.recall import Recall, RecallingReader

log = logging.getLogger(__name__)

RETRY_AFTER_S = "1"
API_WORKERS = 8  # threads answering query API requests
LISTEN_BACKLOG = 1024
KEEP_ALIVE_S = 30  # an idle keep-alive connection is closed after this
HEADER_LIMIT_BYTES = 64 * 1024  # request line plus headers
SHUTDOWN_GRACE_S = 10  # requests still running at shutdown get this long to finish
_CLOSE = (("Connection", "close"),)
READ_MODE_REFUSAL = (
    "this eventscope reads an OpenTelemetry Collector's tables (--store ...?tables=exporter): "
    "send telemetry to that Collector"
)
_BUSY = (("Retry-After", RETRY_AFTER_S), *_CLOSE)
_STATUS_REASONS = {
    400: "undecodable",
    408: "timeout",
    413: "body_too_large",
    415: "unsupported_media",
    429: "too_many_in_flight",
    503: "store_unavailable",
}


class _BodyRefused(Exception):
    """The body could not be read whole; ``reply`` says why (None: the client left)."""

    def __init__(self, reason: str, reply: Reply | None):
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _client(scope: dict) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"


async def _send(send, reply: Reply) -> None:
    headers = [(b"content-type", reply.content_type.encode()), (b"content-length", str(len(reply.body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


class HttpApp:
    """The ASGI application: bearer token, OTLP/HTTP export paths, the query API."""

    def __init__(self, collector: Collector):
        self.collector = collector
        self.config = collector.config
        self.bearer = Bearer(collector.config.token)
        self.refusals = collector.refusals
        # admission bounds the exports in flight to max_in_flight, so this pool never queues
        self._ingest_pool = ThreadPoolExecutor(self.config.max_in_flight, thread_name_prefix="otlp-http")
        self._api_pool = ThreadPoolExecutor(API_WORKERS, thread_name_prefix="api")
        self._recall = Recall()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        client = _client(scope)
        if not self.bearer.allows(_header(scope, b"authorization")):
            reply = answers.reply(401, {"error": "bearer token required"}, (("WWW-Authenticate", "Bearer"),))
            return await self._refuse(send, "unauthorized", client, reply)
        path, method = scope["path"], scope["method"]
        signal_ = SIGNALS_BY_PATH.get(path)
        if signal_ is not None and method == "POST" and self.collector.store.read_mode:
            reply = answers.reply(404, {"error": READ_MODE_REFUSAL}, _CLOSE)
            return await self._refuse(send, "not_found", client, reply)
        if signal_ is not None and method == "POST":
            return await self._export(scope, receive, send, signal_, client)
        if path.startswith(api.API_PREFIX) and method == "GET":
            return await self._query(scope, send)
        if signal_ is not None or path.startswith(api.API_PREFIX):
            allowed = "POST" if signal_ is not None else "GET"
            reply = answers.reply(405, {"error": f"use {allowed} on {path}"}, (("Allow", allowed), *_CLOSE))
            return await self._refuse(send, "method_not_allowed", client, reply)
        return await self._refuse(send, "not_found", client, answers.reply(404, {"error": f"no such endpoint: {path}"}))

    async def _refuse(self, send, reason: str, client: str, reply: Reply) -> None:
        self.refusals.refuse(reason, client, reply.message)
        await _send(send, reply)

    async def _query(self, scope, send) -> None:
        path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
        params = urllib.parse.parse_qs(scope["query_string"].decode("latin-1"))
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(self._api_pool, self._answer_query, path, params)
        await _send(send, reply)

    def _answer_query(self, path: str, params: dict) -> Reply:
        if path == api.API_PREFIX + "/health":
            return answers.reply(200, self.collector.health())
        reader = self._reader()
        try:
            status, payload = api.handle(reader, path, params, self.collector.config.registry)
        except Exception:
            log.exception("query failed: %s", path)
            status, payload = 500, {"error": "query failed; see the collectors log"}
        finally:
            reader.close()
        return answers.reply(status, payload)

    def _reader(self) -> Reader:
        """A reader of the store that shares the stream counts between answers in one store state, where the store
        numbers its states (its number is read before the reader brings the kept state up to date)."""
        store = self.collector.store
        state = getattr(store, "generation", None)
        reader = store.reader()
        return reader if state is None else RecallingReader(reader, self._recall, state, report.STATEMENTS)

    async def _export(self, scope, receive, send, signal_: Signal, client: str) -> None:
        limit = self.config.max_body_bytes
        media = media_type(_header(scope, b"content-type"))
        declared = _header(scope, b"content-length")
        size = int(declared) if declared is not None else 0  # h11 has checked it is one number
        refusal = unsupported(_header(scope, b"content-type"), _header(scope, b"content-encoding"), _CLOSE)
        if refusal is not None:  # before the body is read: a 100-continue sender need not send it
            return await self._refuse(send, "unsupported_media", client, refusal)
        if size > limit:
            reply = error_reply(413, media, f"body exceeds {limit} bytes", _CLOSE)
            return await self._refuse(send, "body_too_large", client, reply)
        admission = self.collector.admission
        if not admission.try_enter(size):
            reply = error_reply(429, media, "too many exports in flight", _BUSY)
            return await self._refuse(send, "too_many_in_flight", client, reply)
        held = [0]  # bytes charged to the budget so far, as they arrived
        deadline = self.config.request_deadline_s
        try:
            body = await asyncio.wait_for(self._read_body(receive, media, held), deadline)
            reply = await asyncio.get_running_loop().run_in_executor(
                self._ingest_pool, self._ingest, signal_, body, scope, client
            )
        except TimeoutError:
            reply = error_reply(408, media, f"the body did not arrive whole within {deadline:g} s", _CLOSE)
            return await self._refuse(send, "timeout", client, reply)
        except _BodyRefused as refused:
            if refused.reply is None:
                return self.refusals.refuse(refused.reason, client)
            return await self._refuse(send, refused.reason, client, refused.reply)
        finally:
            admission.leave(held[0])
        await _send(send, reply)

    async def _read_body(self, receive, media: str, held: list[int]) -> bytes:
        """The whole body, chunk by chunk, the body limit and the byte budget enforced as it arrives."""
        limit, admission = self.config.max_body_bytes, self.collector.admission
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _BodyRefused("incomplete_body", None)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _BodyRefused("body_too_large", error_reply(413, media, f"body exceeds {limit} bytes", _CLOSE))
            if not admission.try_grow(len(chunk)):
                busy = error_reply(429, media, "too many bytes in flight", _BUSY)
                raise _BodyRefused("too_many_in_flight", busy)
            held[0] = size
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _ingest(self, signal_: Signal, body: bytes, scope: dict, client: str) -> Reply:
        content_type, encoding = _header(scope, b"content-type"), _header(scope, b"content-encoding")
        reply = ingest(self.collector.store, signal_, body, content_type, encoding, self.config.max_body_bytes)
        if reply.status != 200:
            self.refusals.refuse(_STATUS_REASONS.get(reply.status, "undecodable"), client, reply.message)
        elif reply.rejected:
            self.refusals.reject_items(reply.rejected, client, reply.message)
        return reply

    def close(self) -> None:
        """Stop the worker pools (after the server stopped taking requests)."""
        self._ingest_pool.shutdown(wait=True)
        self._api_pool.shutdown(wait=True)


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol, counting the requests it turns away itself (not valid HTTP) as refusals, and
    closing a connection whose next request has not begun within the deadline (headers that trickle in, or
    nothing at all), so that idle sockets cannot pile up until the process runs out of file descriptors."""

    refusals: Refusals  # both set on the subclass made by serve()
    head_deadline_s: float

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._await_request()

    def data_received(self, data: bytes) -> None:
        self._heard = True
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._await_request()

    def _await_request(self) -> None:
        self._heard = False
        self.loop.call_later(self.head_deadline_s, self._no_request_in_time, self.cycle)

    def _no_request_in_time(self, cycle) -> None:
        if self.cycle is not cycle or self.transport.is_closing():  # a request began meanwhile, or it is over
            return
        if self._heard:
            self.refusals.refuse("timeout", self._client(), "the request head did not arrive within the deadline")
        self.transport.close()

    def _client(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"

    def send_400_response(self, msg: str) -> None:
        self.refusals.refuse("bad_http", self._client(), msg)
        if self.cycle is not None and not self.cycle.response_complete:
            # garbage pipelined behind a request: this 400 answers the connection and closes it, so the app's
            # own answer to that request, still to come, must be dropped (uvicorn would raise on sending it)
            self.cycle.disconnected = True
        super().send_400_response(msg)


class _QuietInvalidRequests(logging.Filter):
    """uvicorn logs every invalid request; refusals log them rate-limited instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Invalid HTTP request received."


class _Server(uvicorn.Server):
    """uvicorn's server without re-raising SIGTERM after shutdown, so the store closes cleanly afterwards."""

    @contextlib.contextmanager
    def capture_signals(self):
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(config: Config) -> None:
    """Run until SIGINT/SIGTERM; the store is closed cleanly on the way out."""
    collector = Collector(config)
    app = HttpApp(collector)
    bound = {"refusals": collector.refusals, "head_deadline_s": config.request_deadline_s}
    protocol = type("BoundProtocol", (_Protocol,), bound)
    logging.getLogger("uvicorn.error").addFilter(_QuietInvalidRequests())
    server = _Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            http=protocol,
            loop="asyncio",
            lifespan="off",
            access_log=False,
            log_config=None,
            backlog=LISTEN_BACKLOG,
            timeout_keep_alive=KEEP_ALIVE_S,
            h11_max_incomplete_event_size=HEADER_LIMIT_BYTES,
            server_header=False,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
    )
    store = collector.store_spec.describe()
    log.info("collectors listening on http://%s:%d (store %s)", config.host, config.port, store)
    print(f"eventscope collectors: http://{config.host}:{config.port} store={store}", flush=True)
    try:
        server.run()
    finally:
        app.close()
        collector.close()
