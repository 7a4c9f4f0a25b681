"""open_http(): the HTTP client webhooks (and Slack incoming webhooks) are sent with, over aiohttp.

httpx's API, aiohttp's connection pool (as polls use, `bridge.polling.upstream`): the pool costs
about half the CPU of httpcore's per request (`bench/delivery.py` measures both). httpx_aiohttp
reports a refused or reset connection as httpx.ConnectTimeout; the transport here raises what
httpx's own would (ConnectError, RemoteProtocolError, ReadError), so a channel tells a timeout
from a refusal and tries a pinned address's alternatives in turn.
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

MAX_CONNECTIONS = 100
KEEPALIVE_S = 5.0  # httpx's default expiry for an idle kept-alive connection


class DeliveryTransport(AiohttpTransport):
    """AiohttpTransport without a cookie jar of its own, raising httpx's errors for aiohttp's."""

    def __init__(self, *, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(
            verify=verify,
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, keepalive_expiry=KEEPALIVE_S),
            client=self._session,
        )

    def _session(self) -> aiohttp.ClientSession:
        # httpx's client keeps the cookies, as it did over httpcore; a second jar would double them.
        connector = aiohttp.TCPConnector(
            limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_S, ssl=self.ssl_context
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.TransportError as exc:
            raise _as_httpx(exc.__cause__, request) or exc from exc.__cause__
        except aiohttp.ClientError as exc:  # one httpx_aiohttp does not map
            raise as_httpx_error(exc, request) from exc


def as_httpx_error(
    cause: aiohttp.ClientError | OSError, request: httpx.Request | None = None
) -> httpx.TransportError:
    """The httpx error for an error aiohttp raised (a timeout included)."""
    if isinstance(cause, TimeoutError):
        return httpx.TimeoutException(str(cause) or "timed out", request=request)
    mapped = _as_httpx(cause, request)
    if mapped is not None:
        return mapped
    return httpx.TransportError(str(cause) or type(cause).__name__)


def _as_httpx(
    cause: BaseException | None, request: httpx.Request | None
) -> httpx.TransportError | None:
    """The httpx error httpcore raises for what `cause` says happened; None to keep the mapped one."""
    if cause is None or isinstance(cause, TimeoutError):
        return None  # httpx_aiohttp maps timeouts to httpx's timeouts already
    if isinstance(cause, aiohttp.ClientResponseError):
        # Its own text names the request's URL, which may carry a secret (a token in the query).
        return httpx.RemoteProtocolError(cause.message or "invalid response", request=request)
    text = str(cause) or type(cause).__name__
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text, request=request)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(text, request=request)
    if isinstance(cause, aiohttp.ClientConnectionError | OSError):
        return httpx.ReadError(text, request=request)
    return None


def open_http() -> httpx.AsyncClient:
    """The outbound client for deliveries: no redirects followed, the aiohttp pool."""
    return httpx.AsyncClient(transport=DeliveryTransport(), follow_redirects=False)
