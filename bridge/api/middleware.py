"""The API's middleware, outermost first: request ids, metrics and the 500 net; body limit; auth.

All three are plain ASGI classes: the body limit must count streamed (chunked) bytes as they
arrive, and the request id must reach every response, including ones the other two send.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.api.auth import Principal, bearer_token, identify, unauthorized
from bridge.api.context import context_of
from bridge.api.errors import ApiError, api_error_response, error_response, request_id_of
from bridge.api.ratelimit import retry_after_header
from bridge.ids import clean_request_id
from bridge.store.faults import storage_fault

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
STORAGE_RETRY_AFTER_S = 5  # a restarting database is usually back within seconds
PROTECTED_PREFIX = "/v1"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-Id when it is 1..160 printable ASCII characters, else a new one."""
    return clean_request_id(_header(headers, b"x-request-id")) or f"req_{secrets.token_hex(12)}"


def route_template(scope: Scope) -> str:
    """The matched route's path template (a bounded metrics label), or "unmatched"."""
    route = scope.get("route")
    if route is None:
        for candidate in scope["app"].routes:
            match, _ = candidate.matches(scope)
            if match is not Match.NONE:
                route = candidate
                break
    return str(getattr(route, "path", "unmatched"))


class RequestContext:
    """Tags every request and response with X-Request-Id, counts it, and answers real bugs with 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = False

        async def tagged_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                # A JSON error echoing caller input must never be sniffed into HTML by a browser.
                headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        try:
            await self.app(scope, receive, tagged_send)
        except ApiError as exc:
            if started:
                raise
            await api_error_response(scope, exc)(scope, receive, tagged_send)
        except ClientDisconnect:
            status = 499  # the caller hung up mid-request: nobody to answer, nothing to log
        except Exception as exc:
            response = _failure(scope, exc)
            if started:
                raise
            await response(scope, receive, tagged_send)
        finally:
            self._count(scope, status)

    @staticmethod
    def _count(scope: Scope, status: int) -> None:
        api = context_of(scope)
        if api is None:
            return
        method = scope["method"] if scope["method"] in _METHODS else "other"
        api.metrics.api_requests.labels(
            method=method, route=route_template(scope), status=str(status)
        ).inc()


def _failure(scope: Scope, exc: Exception) -> Response:
    """Log an unexpected exception once and answer it: 503 for a storage fault, else 500."""
    where = {"request_id": request_id_of(scope), "method": scope["method"], "path": scope["path"]}
    fault = storage_fault(exc)
    if fault is None:
        log.error("unhandled error in request", extra=where, exc_info=exc)
        return error_response(
            scope,
            status=500,
            code="internal_error",
            message="internal error; quote the request id when reporting it",
        )
    api = context_of(scope)
    log.error(
        "storage unavailable",
        extra={
            **where,
            "fault": fault,
            "storage": api.store.db.location if api else "",
            "error": f"{type(exc).__name__}: {exc}"[:300],
        },
    )
    retry_after = str(STORAGE_RETRY_AFTER_S)
    return error_response(
        scope,
        status=503,
        code="storage_unavailable",
        message=f"storage is unavailable ({fault}); retry after {retry_after} s",
        headers={"Retry-After": retry_after},
    )


def _too_large() -> ApiError:
    return ApiError(413, "payload_too_large", f"request body is larger than {MAX_BODY_BYTES} bytes")


class BodyLimit:
    """Refuses bodies over the limit: by Content-Length up front, and by counting chunked bytes."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope["headers"], b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await api_error_response(scope, _too_large())(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _too_large()
            return message

        await self.app(scope, counting_receive, send)


class Authenticate:
    """Maps the bearer token of every /v1 request to a client or an operator, then rate-limits it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")
        ):
            await self.app(scope, receive, send)
            return
        try:
            principal = self._authenticate(scope)
        except ApiError as exc:
            await api_error_response(scope, exc)(scope, receive, send)
            return
        scope["state"]["principal"] = principal
        await self.app(scope, receive, send)

    def _authenticate(self, scope: Scope) -> Principal:
        api = context_of(scope)
        if api is None:
            raise unauthorized("the bridge is starting")
        principal = identify(
            bearer_token(scope["headers"]), clients=api.clients, operators=api.operators
        )
        if principal is None:
            raise unauthorized("unknown bearer token")
        wait_s = api.limiter.acquire(principal.key)
        if wait_s > 0:
            retry_after = retry_after_header(wait_s)
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests; retry after {retry_after} s",
                headers={"Retry-After": retry_after},
            )
        return principal


def middleware() -> list[Middleware]:
    """The API's middleware stack, outermost first."""
    return [Middleware(RequestContext), Middleware(BodyLimit), Middleware(Authenticate)]
