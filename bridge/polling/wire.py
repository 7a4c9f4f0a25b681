"""wire_for(transport): how an upstream GET is sent: one status, its headers and a bounded body.

Over the aiohttp transport (the default), a GET goes to the transport's aiohttp session directly: an
httpx Request, URL and Response around every poll were a fifth of a poll's CPU. Any other transport
(httpx's own, one a test hands in) is sent the httpx way. Either way the caller bounds the whole
exchange with its own timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx
from aiohttp.http_exceptions import ContentEncodingError
from httpx_aiohttp import AiohttpTransport
from yarl import URL

MAX_BODY_BYTES = 1024 * 1024  # a 20-item job is a few KiB; anything near this is not a job
# The caller's asyncio.timeout bounds the exchange: aiohttp's own timers (one per read) only cost.
_NO_TIMERS = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)


@dataclass(frozen=True, slots=True)
class Reply:
    """What one GET answered; `body` is None when it was over MAX_BODY_BYTES or undecodable."""

    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes | None


class Wire(Protocol):
    async def get(self, url: str, headers: Mapping[str, str]) -> Reply:
        """Send one GET with the client's headers and `headers` (no redirects followed); raises
        httpx's, aiohttp's or OS errors."""
        ...


class Borrowed(httpx.AsyncBaseTransport):
    """Lends a shared transport to one client; closing the client leaves the pool open."""

    def __init__(self, lent: httpx.AsyncBaseTransport) -> None:
        self.lent = lent

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.lent.handle_async_request(request)

    async def aclose(self) -> None:
        return None  # the owner closes the shared transport


def wire_for(client: httpx.AsyncClient, *, headers: Mapping[str, str]) -> Wire:
    """The wire for the transport `client` sends its base URL's requests to; `headers` are the
    client's own (httpx adds its defaults to them, aiohttp its own)."""
    transport = client._transport_for_url(client.base_url)  # the one `client.get` would use
    lent = transport.lent if isinstance(transport, Borrowed) else transport
    if isinstance(lent, AiohttpTransport):
        return SessionWire(lent, headers=headers)
    return HttpxWire(transport, timeout=client.timeout, headers=client.headers)


class HttpxWire:
    """A GET through any httpx transport, as `httpx.AsyncClient.get` would send it."""

    def __init__(
        self, transport: httpx.AsyncBaseTransport, *, timeout: httpx.Timeout, headers: httpx.Headers
    ) -> None:
        self._transport = transport
        self._extensions = {"timeout": timeout.as_dict()}
        self._headers = list(headers.raw)

    async def get(self, url: str, headers: Mapping[str, str]) -> Reply:
        raw = [*self._headers, *((k.encode(), v.encode()) for k, v in headers.items())]
        request = httpx.Request("GET", url, headers=raw, extensions=self._extensions)
        response = await self._transport.handle_async_request(request)
        try:
            body = await _read_httpx(response)
        finally:
            await response.aclose()
        return Reply(response.status_code, response.headers, body)


class SessionWire:
    """A GET through the aiohttp session of an AiohttpTransport: the same pool, no httpx objects."""

    def __init__(self, transport: AiohttpTransport, *, headers: Mapping[str, str]) -> None:
        self._transport = transport
        self._headers = dict(headers)

    def _session(self) -> aiohttp.ClientSession:
        # Made on first use as the transport makes it (inside the running loop), then shared.
        if not isinstance(self._transport.client, aiohttp.ClientSession):
            self._transport.client = self._transport.get_client()
        return self._transport.client

    async def get(self, url: str, headers: Mapping[str, str]) -> Reply:
        request = self._session().get(
            URL(url, encoded=True),  # quoted by the caller; yarl must not requote or normalise it
            headers={**self._headers, **headers},
            allow_redirects=False,
            timeout=_NO_TIMERS,
        )
        async with request as response:
            body = await _read_aiohttp(response)
            return Reply(response.status, response.headers, body)


async def _read_httpx(response: httpx.Response) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
    except httpx.DecodingError:
        return None
    return b"".join(chunks)


async def _read_aiohttp(response: aiohttp.ClientResponse) -> bytes | None:
    if (response.content_length or 0) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
    except aiohttp.ClientPayloadError as exc:
        if _undecodable(exc):
            return None
        raise  # the connection broke mid-body
    return b"".join(chunks)


def _undecodable(exc: aiohttp.ClientPayloadError) -> bool:
    """The body arrived but its Content-Encoding does not decode (httpx's DecodingError)."""
    return isinstance(exc.__cause__, ContentEncodingError) or "content-encoding" in str(exc)
