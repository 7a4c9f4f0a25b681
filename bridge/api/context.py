"""ApiContext: what the API's handlers and middleware need, built once per app and reached through
the request's lifespan state; also the authenticated client and a JSON response."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from bridge.api.auth import unauthorized
from bridge.api.ratelimit import RateLimiter
from bridge.clock import Clock
from bridge.config import AccountConfig, ClientConfig
from bridge.delivery.urlguard import Resolver
from bridge.ops.metrics import Metrics
from bridge.store import Store


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The API's collaborators and the few settings it reads."""

    clients: Mapping[str, ClientConfig]
    accounts: Mapping[str, AccountConfig]
    watch_ttl: timedelta
    allowed_hosts: Sequence[str]
    store: Store
    metrics: Metrics
    now: Clock
    resolve: Resolver | None  # DNS for the unsafe-URL guard; None means the system resolver
    scheduler_running: Callable[[], bool]
    limiter: RateLimiter


def context_of(scope: Scope) -> ApiContext | None:
    """The app's ApiContext, which the lifespan put in every request's state (None before it)."""
    found = scope.get("state", {}).get("api")
    return found if isinstance(found, ApiContext) else None


def api_of(request: Request) -> ApiContext:
    """The running bridge's ApiContext, for a handler."""
    found = context_of(request.scope)
    if found is None:
        raise RuntimeError("the bridge's lifespan has not started")
    return found


def client_of(request: Request) -> str:
    """The authenticated client's name, set by the Authenticate middleware."""
    name = request.scope.get("state", {}).get("client")
    if not isinstance(name, str):
        raise unauthorized("this route needs a bearer token")
    return name


def json_response(
    model: BaseModel, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """`model` as an application/json response (datetimes in ISO 8601 with Z)."""
    return Response(
        model.model_dump_json().encode(),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )
