"""create_simulator(settings) -> Starlette: the upstream routes, the /_sim/ routes, one envelope,
and the upstream's own webhooks sent in the background while the app runs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from bridge.devtools.simulator.api import upstream_routes
from bridge.devtools.simulator.control import control_routes
from bridge.devtools.simulator.responses import RequestIdMiddleware, error_response
from bridge.devtools.simulator.sender import WebhookSender
from bridge.devtools.simulator.settings import SimulatorSettings
from bridge.devtools.simulator.state import Simulator


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "not_found", 405: "method_not_allowed"}.get(status)
    return error_response(request, status, code=code, message=getattr(exc, "detail", None))


def create_simulator(settings: SimulatorSettings | None = None) -> Starlette:
    """Build the simulator app, mounted as the API root; app.state.simulator controls it and
    app.state.webhooks sends what its jobs owe (`await app.state.webhooks.send_due()` in tests)."""
    sim = Simulator(settings)
    sender = WebhookSender(sim)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with sender.running():
            yield

    app = Starlette(
        routes=[*upstream_routes(), *control_routes()],
        middleware=[Middleware(RequestIdMiddleware, simulator=sim)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.simulator = sim
    app.state.webhooks = sender
    return app
