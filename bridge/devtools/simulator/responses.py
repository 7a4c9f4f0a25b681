"""The upstream's response shapes: JSON bodies, the error envelope, X-Request-Id."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.devtools.simulator.state import Simulator

ERROR_CODES = {
    400: "invalid_request",
    401: "invalid_api_key",
    404: "job_not_found",
    405: "method_not_allowed",
    409: "idempotency_conflict",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
}
ERROR_MESSAGES = {
    "invalid_api_key": "The API key is missing, invalid, expired, inactive, or revoked.",
    "job_not_found": "Product Photo job not found.",
    "rate_limited": "Too many requests for this API key; retry after the given delay.",
    "internal_error": "An unexpected error occurred.",
}


def simulator(request: Request) -> Simulator:
    """Return the Simulator the app was built around."""
    sim: Simulator = request.app.state.simulator
    return sim


def json_response(
    request: Request, body: Mapping[str, Any], *, status: int = 200, headers: Mapping[str, str] = {}
) -> Response:
    """Return `body` as JSON, adding request_id to it."""
    return _Json({**body, "request_id": request_id(request)}, status, headers=dict(headers))


class _Json(JSONResponse):
    """JSON as Starlette writes it, except that text UTF-8 cannot encode (a lone surrogate, which
    a test scripts to play a broken upstream) goes as its `\\ud800` escape, as JSON allows."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def error_response(
    request: Request,
    status: int,
    *,
    code: str | None = None,
    message: str | None = None,
    headers: Mapping[str, str] = {},
    retry_after: float | None = None,
) -> Response:
    """Return the error envelope `{"error": {"code", "message", "request_id"}}`."""
    code = code or ERROR_CODES.get(status, "simulated_error")
    message = message or ERROR_MESSAGES.get(code, "The simulator returned this error on request.")
    extra = dict(headers)
    if retry_after is not None:
        extra["Retry-After"] = str(max(0, math.ceil(retry_after)))
    body = {"error": {"code": code, "message": message, "request_id": request_id(request)}}
    return JSONResponse(body, status, headers=extra)


def request_id(request: Request) -> str:
    """Return the id RequestIdMiddleware gave this request."""
    rid: str = request.scope["state"]["request_id"]
    return rid


class RequestIdMiddleware:
    """Give each request an id (the caller's X-Request-Id when usable) and echo it back."""

    def __init__(self, app: ASGIApp, *, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Tag the scope and the response start with the request id."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        rid = self.simulator.request_id(given.decode("latin-1") if given else None)
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_id)
