"""The synchronous shop: every service an HTTP server in one process, orders calling the others in turn.

Each service has its own tracer provider under the name ``sync-{service}``, so both shops can send to
the same collector and stay apart. SERVER spans come from the official ASGI instrumentation and CLIENT
spans from the official requests instrumentation, which puts ``traceparent`` on every call, so one
order is one trace. The storefront's own calls are not traced (as on the event-driven side, the order's
trace starts in orders). Its state (stock, wallets, the accounts event store) lives in Redis database
``SYNC_DB``, apart from the event-driven shop's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import redis
import requests
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.sdk.trace.export import SpanExporter
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sample_system import shop, storefront, telemetry
from sample_system.bus import client_name
from sample_system.config import SampleConfig
from sample_system.services import accounts, inventory, notifications, order_view, orders, payments, shipping
from sample_system.sync import checkout, services
from sample_system.sync.server import Server
from sample_system.wallet import Wallets

SYNC_DB = 1
"""The Redis database of the synchronous shop's state (the event-driven shop uses database 0)."""
SERVICE_PREFIX = "sync-"
SERVICES = tuple(name for name in shop.SERVICES if name != order_view.SERVICE)
"""The event-driven shop's services but the order view, a read model fed by events with no HTTP form."""
ORDERS_PATH = "/orders"
STATUS_CODES = {checkout.ACCEPTED: 200, checkout.DECLINED: 422, checkout.FAILED: 502}
STOREFRONT_TIMEOUT_S = 30.0


def state_client(redis_url: str) -> redis.Redis:
    """A connection to ``SYNC_DB`` on the server of ``redis_url`` (whatever database the URL names)."""
    settings = {**redis.connection.parse_url(redis_url), "db": SYNC_DB, "client_name": client_name("sync-shop")}
    return redis.Redis(connection_pool=redis.ConnectionPool(**settings))


def service_name(service: str) -> str:
    """The ``service.name`` of a synchronous service."""
    return SERVICE_PREFIX + service


class SyncShop:
    """Starts the HTTP services; ``handlers`` are the storefront's commands; ``close`` stops and flushes."""

    def __init__(
        self,
        config: SampleConfig,
        exporter_factory: Callable[[], SpanExporter | None] | None = None,
        gates: Mapping[str, services.Gate] | None = None,
    ):
        make_exporter = exporter_factory or (lambda: None)
        self.config = config
        self.providers = {
            name: telemetry.tracer_provider(service_name(name), config.tracing, make_exporter()) for name in SERVICES
        }
        self.client = state_client(config.redis_url)
        self._session = requests.Session()
        self._storefront = requests.Session()
        gates = gates or {}
        self._servers = {
            name: self._server(name, gates.get(name, services.OPEN)) for name in SERVICES if name != orders.SERVICE
        }
        self._checkout = checkout.Checkout(self._session, {n: s.url for n, s in self._servers.items()}, self.client)
        orders_app = Starlette(routes=[Route(ORDERS_PATH, self._place, methods=["POST"])])
        self._servers[orders.SERVICE] = Server(service_name(orders.SERVICE), orders_app, self.providers[orders.SERVICE])
        self._instrumentor = RequestsInstrumentor()

    def _server(self, name: str, gate: services.Gate) -> Server:
        client = self.client
        builds = {
            inventory.SERVICE: lambda answer: inventory.Inventory(client, answer),
            payments.SERVICE: lambda answer: payments.Payments(answer, Wallets(client)),
            shipping.SERVICE: lambda answer: shipping.Shipping(answer),
            notifications.SERVICE: lambda answer: notifications.Notifications(),
            accounts.SERVICE: lambda answer: accounts.Accounts(client, answer, answer),
        }
        commands = _account_commands(client) if name == accounts.SERVICE else None
        app = services.app(name, services.handler(builds[name]), gate, commands)
        return Server(service_name(name), app, self.providers[name])

    async def _place(self, request: Request) -> JSONResponse:
        try:
            order = await request.json()
            verdict = await run_in_threadpool(self._checkout.place, order)
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "not an order"}, status_code=services.BAD_REQUEST)
        return JSONResponse(verdict.as_dict(), status_code=STATUS_CODES[verdict.status])

    @property
    def urls(self) -> dict[str, str]:
        return {name: server.url for name, server in self._servers.items()}

    def place_order(self, order: dict) -> checkout.Verdict:
        """The storefront's PlaceOrder: one HTTP call to orders, answered when every step has answered."""
        try:
            with suppress_http_instrumentation():
                response = self._storefront.post(
                    self._servers[orders.SERVICE].url + ORDERS_PATH, json=order, timeout=STOREFRONT_TIMEOUT_S
                )
            answer = response.json()
            return checkout.Verdict(order["order_id"], answer["status"], answer.get("reason", ""))
        except (requests.RequestException, ValueError, KeyError) as exc:
            return checkout.Verdict(order["order_id"], checkout.FAILED, f"orders did not answer: {type(exc).__name__}")

    def _command(self, name: str, command: dict) -> None:
        url = f"{self._servers[accounts.SERVICE].url}{services.COMMAND_PATH.format(name=name)}"
        with suppress_http_instrumentation():
            self._storefront.post(url, json=command, timeout=STOREFRONT_TIMEOUT_S).raise_for_status()

    def handlers(self) -> dict[str, Callable[[dict], object]]:
        """The storefront's commands, by name (as ``Shop.handlers``)."""
        return {
            storefront.PLACE_ORDER: self.place_order,
            storefront.SIGN_UP: lambda command: self._command(storefront.SIGN_UP, command),
            storefront.TOP_UP: lambda command: self._command(storefront.TOP_UP, command),
        }

    def start(self) -> SyncShop:
        for server in self._servers.values():
            server.start()
        if not self._instrumentor.is_instrumented_by_opentelemetry:
            self._instrumentor.instrument(tracer_provider=self.providers[orders.SERVICE])
        return self

    def close(self) -> None:
        if self._instrumentor.is_instrumented_by_opentelemetry:
            self._instrumentor.uninstrument()
        for server in self._servers.values():
            server.stop()
        telemetry.shutdown(list(self.providers.values()))
        for session in (self._session, self._storefront):
            session.close()
        self.client.close()

    def __enter__(self) -> SyncShop:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _account_commands(client: redis.Redis) -> services.Handling:
    def run(answer, name: str, command: dict) -> object:
        account = accounts.Accounts(client, answer, answer)
        return account.sign_up(command) if name == storefront.SIGN_UP else account.top_up(command)

    return run
