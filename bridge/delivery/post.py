"""poster_for(client): how a webhook POST is sent: its status, Retry-After and a response excerpt.

Over the deliveries' aiohttp transport (`bridge.delivery.http`) a POST goes to the transport's
aiohttp session directly: httpx's Request, URL, cookie and Response objects around every webhook
were a quarter of a delivery's CPU (the same step polls took, `bridge.polling.wire`). A client with
any other transport, or with mounts of its own (a proxy), is sent the httpx way; an aiohttp
session keeps no cookies (`DeliveryTransport`), so no receiver's cookie rides on a later webhook. Either
way no redirect is followed, connect and response headers must come before `deadline` (loop time,
TimeoutError otherwise) and failures are httpx's errors, so the channel maps one set.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx
from aiohttp.client_reqrep import ConnectionKey
from httpx_aiohttp import AiohttpTransport
from yarl import URL

from bridge.delivery.http import DeliveryTransport, as_httpx_error

EXCERPT_CHARS = 500
_EXCERPT_BYTES = 4 * EXCERPT_CHARS  # enough for 500 characters of UTF-8
# The caller's deadline bounds the exchange: aiohttp's own timers (one per read) only cost.
_NO_TIMERS = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)
# aiohttp keys its pool by the TLS name too: a connection made for one name serves only that name,
# so a pinned webhook may keep its connection (one TLS handshake per receiver, not per webhook).
_POOL_KEYED_BY_NAME = "server_hostname" in ConnectionKey._fields
_CLOSE = {"connection": "close"}  # where the pool cannot tell names apart: one connection each


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver answered; `excerpt` is None when the body could not be read in time."""

    status: int
    retry_after: str | None
    excerpt: str | None


class Poster(Protocol):
    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        deadline: float,
        sni_hostname: str | None = None,
    ) -> Answer:
        """POST `body` to `url` with exactly `headers` (no redirects followed); raises
        TimeoutError past `deadline` before the response headers, else httpx's errors. With
        `sni_hostname`, TLS verifies that name (the URL names the address to connect to), and a
        connection made for it never serves another name."""
        ...


def poster_for(client: httpx.AsyncClient, *, timeout_s: float) -> Poster:
    """The poster for `client`: its aiohttp session when every URL goes to the deliveries'
    aiohttp transport (no proxy, no cookie jar), else httpx itself."""
    transport = client._transport  # what `client.send` uses for any URL no mount claims
    if isinstance(transport, DeliveryTransport) and transport.proxy is None and not client._mounts:
        return SessionPoster(transport)
    return HttpxPoster(client, timeout_s=timeout_s)


class SessionPoster:
    """A POST through the aiohttp session of an AiohttpTransport: the same pool, no httpx objects."""

    def __init__(self, transport: AiohttpTransport) -> None:
        self._transport = transport

    def _session(self) -> aiohttp.ClientSession:
        # Made on first use as the transport makes it (inside the running loop), then shared.
        if not isinstance(self._transport.client, aiohttp.ClientSession):
            self._transport.client = self._transport.get_client()
        return self._transport.client

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        deadline: float,
        sni_hostname: str | None = None,
    ) -> Answer:
        if sni_hostname and not _POOL_KEYED_BY_NAME:
            headers = {**headers, **_CLOSE}
        request = self._session().post(
            _wire_url(url),
            headers=headers,
            data=body,
            allow_redirects=False,
            timeout=_NO_TIMERS,
            server_hostname=sni_hostname,
        )
        response: aiohttp.ClientResponse | None = None
        excerpt: str | None = None
        try:
            async with asyncio.timeout_at(deadline):  # one timer for the headers and the excerpt
                response = await request.__aenter__()
                excerpt = await _excerpt(response)
        except TimeoutError:
            if response is None:
                raise
        except (aiohttp.ClientError, OSError) as exc:
            raise as_httpx_error(exc) from exc
        finally:
            if response is not None:
                response.release()
        return Answer(response.status, response.headers.get("retry-after"), excerpt)


class HttpxPoster:
    """A POST as `httpx.AsyncClient.send` makes it, through whatever transport the client has."""

    def __init__(self, client: httpx.AsyncClient, *, timeout_s: float) -> None:
        self._client = client
        self._timeout = httpx.Timeout(timeout_s)

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        deadline: float,
        sni_hostname: str | None = None,
    ) -> Answer:
        if sni_hostname:
            headers = {**headers, **_CLOSE}  # httpcore's pool knows a connection by address only
        request = self._client.build_request(
            "POST",
            url,
            headers=headers,
            content=body,
            timeout=self._timeout,
            extensions={"sni_hostname": sni_hostname} if sni_hostname else {},
        )
        async with asyncio.timeout_at(deadline):
            response = await self._client.send(request, follow_redirects=False, stream=True)
        try:
            async with asyncio.timeout_at(deadline):
                excerpt = await _read_httpx(response)
        except (TimeoutError, httpx.HTTPError):
            excerpt = None  # the status is what counts; a body cut short does not change it
        finally:
            # Bounded too: a webhook's send ends within its deadline (the deliverer sets no timer
            # of its own around it), give or take this close.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(max(deadline, asyncio.get_running_loop().time() + 1)):
                    await response.aclose()
        return Answer(response.status_code, response.headers.get("retry-after"), excerpt)


@functools.lru_cache(maxsize=4096)
def _wire_url(url: str) -> URL:
    """The URL as httpx would send it (percent-encoded the same way), for aiohttp as is."""
    return URL(str(httpx.URL(url)), encoded=True)


async def _excerpt(response: aiohttp.ClientResponse) -> str | None:
    """The start of the body as text, reading no more than needed; None if it broke off."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size < _EXCERPT_BYTES and (chunk := await response.content.readany()):
            chunks.append(chunk)
            size += len(chunk)
    except (aiohttp.ClientError, OSError):
        return None  # the status is what counts; a body cut short does not change it
    return _decode(b"".join(chunks), _charset(response.charset))


async def _read_httpx(response: httpx.Response) -> str:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _EXCERPT_BYTES:
            break
    return _decode(b"".join(chunks), _charset(response.charset_encoding))


def _charset(declared: str | None) -> str:
    """The body's declared charset when Python knows it as a text encoding, else UTF-8 (as httpx
    decides); `base64` or `zlib` are codecs too, but not ones a body can be decoded with."""
    if declared:
        try:
            info = codecs.lookup(declared)
        except LookupError:
            return "utf-8"
        if getattr(info, "_is_text_encoding", True):
            return info.name
    return "utf-8"


def _decode(raw: bytes, encoding: str) -> str:
    return raw[:_EXCERPT_BYTES].decode(encoding, errors="replace")[:EXCERPT_CHARS]
