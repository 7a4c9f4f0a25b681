"""One error envelope for the whole API: `{"error": {"code", "message", "request_id"}}`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ExceptionHandler, Scope

# Codes for statuses Starlette itself raises (unknown route, wrong method, ...).
_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


class ApiError(Exception):
    """An expected failure a handler or middleware reports to the caller with a status and a code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def invalid(field: str, problem: str) -> ApiError:
    """A 400 invalid_request naming the field, e.g. invalid("job_id", "must be a UUID")."""
    return ApiError(400, "invalid_request", f"{field}: {problem}")


def request_id_of(scope: Scope) -> str:
    """The request id the middleware gave this request ("" before it ran)."""
    state = scope.get("state") or {}
    return str(state.get("request_id", ""))


def error_response(
    scope: Scope,
    *,
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The JSON error envelope as a response."""
    body = {"error": {"code": code, "message": message, "request_id": request_id_of(scope)}}
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def api_error_response(scope: Scope, exc: ApiError) -> Response:
    """The envelope for an ApiError."""
    return error_response(
        scope, status=exc.status, code=exc.code, message=exc.message, headers=exc.headers
    )


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return api_error_response(request.scope, exc)


def _allowed_methods(scope: Scope) -> str:
    """Every method any route serves on this path (Starlette's own Allow names only one route)."""
    methods: set[str] = set()
    for route in scope["app"].routes:
        match, _ = route.matches({**scope, "method": "\0"})
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers: dict[str, str] = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request.scope)
        message = f"{request.method} is not allowed here; use {headers['Allow']}"
    else:
        message = str(exc.detail)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(
        request.scope, status=exc.status_code, code=code, message=message, headers=headers
    )


def exception_handlers() -> dict[Any, ExceptionHandler]:
    """Handlers that turn ApiError and Starlette's HTTPException into the envelope.

    Unexpected exceptions are caught, logged and answered with a 500 by the request-context
    middleware, which sits outside these handlers and so also covers the other middleware.
    """
    return {ApiError: _on_api_error, HTTPException: _on_http_exception}
