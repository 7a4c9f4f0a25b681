"""ApiContext: what the API's handlers and middleware need, built once per app and reached through
the request's lifespan state; also who is asking (a client or an operator) and a JSON response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from bridge.api.auth import Principal, unauthorized
from bridge.api.ratelimit import RateLimiter
from bridge.clock import Clock
from bridge.config import AccountConfig, ChannelConfig, ClientConfig, OperatorConfig
from bridge.delivery.urlguard import Resolver
from bridge.events.import_events import ImportEventPlanner
from bridge.ops.metrics import Metrics
from bridge.store import Store


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The API's collaborators and the few settings it reads."""

    clients: Mapping[str, ClientConfig]
    operators: Mapping[str, OperatorConfig]
    accounts: Mapping[str, AccountConfig]
    channels: Mapping[str, ChannelConfig]
    watch_ttl: timedelta
    import_job_ttl: timedelta  # an import's jobs wait upstream for days: their watches live longer
    allowed_hosts: Sequence[str]
    store: Store
    metrics: Metrics
    now: Clock
    resolve: Resolver | None  # DNS for the unsafe-URL guard; None means the system resolver
    scheduler_running: Callable[[], bool]
    limiter: RateLimiter
    imports: ImportEventPlanner  # numbers and routes the events of imports the API changes
    # Discovery's watch of a signalled job nobody watches (account, job id) -> whether one was made;
    # None when discovery is not running.
    watch_signalled: Callable[[str, str], Awaitable[bool]] | None = None


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


def _principal(request: Request) -> Principal | None:
    found = request.scope.get("state", {}).get("principal")
    return found if isinstance(found, Principal) else None


def client_of(request: Request) -> str:
    """The authenticated client's name; an operator's token is a 401 on a client's endpoint."""
    principal = _principal(request)
    if principal is None or principal.kind != "client":
        raise unauthorized("this endpoint takes a client's bearer token")
    return principal.name


def operator_of(request: Request) -> str:
    """The authenticated operator's name; a client's token is a 401 on /v1/ops."""
    principal = _principal(request)
    if principal is None or principal.kind != "operator":
        raise unauthorized("this endpoint takes an operator's bearer token")
    return principal.name


def reader_of(request: Request) -> str | None:
    """Whose watches the caller may read: a client's own (its name), or every watch (None) for an
    operator."""
    principal = _principal(request)
    if principal is None:
        raise unauthorized("this endpoint needs a bearer token")
    return principal.name if principal.kind == "client" else None


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
