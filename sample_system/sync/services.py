"""The shop's services as HTTP endpoints: each call runs the service's own business logic once.

``POST /handle/{channel}`` takes the event the service would have received on ``channel`` and answers
``{"emitted": [...]}``, the events it would have published (sample_system.sync.answer). Accounts also
takes the storefront's commands (``POST /commands/{name}``). A service whose gate says it is down
answers 503, as an instance behind a load balancer with no healthy backend does.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from opentelemetry import trace
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sample_system.sync.answer import Answer

HANDLE_PATH = "/handle/{channel}"
COMMAND_PATH = "/commands/{name}"
UNAVAILABLE = 503
BAD_REQUEST = 400


@dataclasses.dataclass(frozen=True)
class Gate:
    """What the faults make of a service right now: down (answers 503), or slow by ``delay_s``."""

    down: Callable[[], bool] = lambda: False
    delay_s: Callable[[], float] = lambda: 0.0


OPEN = Gate()
Handling = Callable[[Answer, str, dict], object]
"""Runs one call's business logic: (answer, channel or command, body) -> what it returned."""


def _run(handling: Handling, source: str, target: str, body: dict, delay_s: float) -> tuple[dict, int]:
    if delay_s:
        time.sleep(delay_s)  # holds this request's worker, as a slow dependency does
    answer = Answer(source)
    try:
        handling(answer, target, body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # not the event this service takes
        return {"error": f"not an event this service can handle: {type(exc).__name__}: {exc}"}, BAD_REQUEST
    return {"emitted": answer.emitted}, 200


def app(service: str, handling: Handling, gate: Gate = OPEN, commands: Handling | None = None) -> Starlette:
    """The ASGI app of one service: its events, and its commands when it takes any."""
    source = f"/sample/sync/{service}"

    async def endpoint(request: Request, target: str, run: Handling) -> JSONResponse:
        if gate.down():
            return JSONResponse({"error": f"{service} is unavailable"}, status_code=UNAVAILABLE)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=BAD_REQUEST)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body is not a JSON object"}, status_code=BAD_REQUEST)
        answer, status = await run_in_threadpool(_run, run, source, target, body, gate.delay_s())
        return JSONResponse(answer, status_code=status)

    async def handle(request: Request) -> JSONResponse:
        return await endpoint(request, request.path_params["channel"], handling)

    async def command(request: Request) -> JSONResponse:
        return await endpoint(request, request.path_params["name"], commands or handling)

    routes = [Route(HANDLE_PATH, handle, methods=["POST"])]
    if commands is not None:
        routes.append(Route(COMMAND_PATH, command, methods=["POST"]))
    return Starlette(routes=routes)


def handler(build: Callable[[Answer], object]) -> Handling:
    """A service's ``handle(channel, event, span)`` as one call, on an instance built for this call."""

    def handling(answer: Answer, channel: str, event: dict) -> object:
        return build(answer).handle(channel, event, trace.get_current_span())

    return handling
