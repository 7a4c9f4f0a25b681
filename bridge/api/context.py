"""What every handler needs from its request: the services, the client, and a JSON response."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from bridge.api.auth import unauthorized
from bridge.services import Services


def services_of(request: Request) -> Services:
    """The running bridge's shared services."""
    services: Services = request.app.state.services
    return services


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
