"""Signed webhooks (Standard Webhooks): one POST per attempt, its outcome mapped for delivery."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

import httpx

from bridge.clock import utcnow
from bridge.delivery import signing
from bridge.delivery.channels import Message, SendError, SendResult
from bridge.delivery.failures import http_status_is_permanent
from bridge.delivery.urlguard import IPAddress, Resolver, UnsafeURL, check_url
from bridge.outbound import parse_retry_after

log = logging.getLogger(__name__)

EXCERPT_CHARS = 500
_EXCERPT_BYTES = 4 * EXCERPT_CHARS  # enough for 500 characters of UTF-8


class WebhookChannel:
    """Posts each event as JSON to one URL, signed with every configured secret."""

    def __init__(
        self,
        *,
        url: str,
        secrets: Sequence[str],
        client: httpx.AsyncClient,
        allowed_hosts: Collection[str],
        timeout_s: float,
        user_agent: str,
        resolve: Resolver | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        if not secrets:
            raise ValueError("a webhook channel needs at least one secret")
        for secret in secrets:
            signing.check_secret(secret)
        self._url = url
        self._secrets = tuple(secrets)
        self._client = client
        self._allowed_hosts = tuple(allowed_hosts)
        self._timeout_s = timeout_s
        self._user_agent = user_agent
        self._resolve = resolve
        self._now = now

    async def send(self, message: Message) -> SendResult:
        """Make one signed POST of the event; raise SendError unless the receiver answered 2xx."""
        body = json.dumps(dict(message.payload), separators=(",", ":")).encode("utf-8")
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        try:
            # One deadline for the whole attempt: DNS, connect, upload and response headers.
            async with asyncio.timeout_at(deadline):
                addresses = await check_url(
                    self._url, allowed_hosts=self._allowed_hosts, resolve=self._resolve
                )
                response = await self._post(message, body, addresses)
        except UnsafeURL as exc:
            log.warning(
                "webhook url refused",
                extra={"event_id": message.event_id, "reason": exc.reason, "address": exc.address},
            )
            raise SendError(f"unsafe webhook URL: {exc.reason}") from None
        except (TimeoutError, httpx.TimeoutException):
            raise SendError(f"timeout after {self._timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise SendError(f"connection error: {_describe(exc)}") from None
        try:
            async with asyncio.timeout_at(deadline):
                excerpt = await _read_excerpt(response)
        except (TimeoutError, httpx.HTTPError):
            excerpt = None  # the status is what counts; a body cut short does not change it
        finally:
            await response.aclose()
        return self._outcome(response, excerpt)

    async def _post(
        self, message: Message, body: bytes, addresses: list[IPAddress]
    ) -> httpx.Response:
        """Send the request, to the checked addresses in turn when DNS had to be asked."""
        url = httpx.URL(self._url)
        headers = {
            "content-type": "application/json",
            "user-agent": self._user_agent,
            "accept-encoding": "identity",
            **signing.headers(
                msg_id=message.event_id, timestamp=self._now(), body=body, secrets=self._secrets
            ),
        }
        if not addresses or _is_ip_literal(url.host):
            return await self._send_one(url, headers, body, extensions={})
        # Connect to exactly the addresses we checked, so a DNS answer that changes between the
        # check and the connect (DNS rebinding) cannot point us elsewhere. TLS still verifies the
        # name; `connection: close` keeps a connection made for one name from serving another.
        pinned_headers = {**headers, "host": url.netloc.decode("ascii"), "connection": "close"}
        extensions = {"sni_hostname": url.raw_host.decode("ascii")}
        for address in addresses[:-1]:
            try:
                return await self._send_one(
                    url.copy_with(host=str(address)), pinned_headers, body, extensions=extensions
                )
            except httpx.ConnectError:
                continue
        pinned = url.copy_with(host=str(addresses[-1]))
        return await self._send_one(pinned, pinned_headers, body, extensions=extensions)

    async def _send_one(
        self, url: httpx.URL, headers: dict[str, str], body: bytes, *, extensions: dict[str, str]
    ) -> httpx.Response:
        request = self._client.build_request(
            "POST",
            url,
            headers=headers,
            content=body,
            timeout=httpx.Timeout(self._timeout_s),
            extensions=extensions,
        )
        return await self._client.send(request, follow_redirects=False, stream=True)

    def _outcome(self, response: httpx.Response, excerpt: str | None) -> SendResult:
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(status_code=status, response_excerpt=excerpt)
        message = f"HTTP {status}"
        if 300 <= status < 400:
            message += " (redirects are not followed)"
        raise SendError(
            message,
            status_code=status,
            retry_after_s=parse_retry_after(response.headers.get("retry-after"), now=self._now()),
            response_excerpt=excerpt,
            permanent=http_status_is_permanent(status),
        )


async def _read_excerpt(response: httpx.Response) -> str:
    """The start of the response body as text, reading no more than needed."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _EXCERPT_BYTES:
            break
    raw = b"".join(chunks)[:_EXCERPT_BYTES]
    return raw.decode(response.encoding or "utf-8", errors="replace")[:EXCERPT_CHARS]


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _describe(exc: httpx.HTTPError) -> str:
    detail = str(exc) or "no details"
    return f"{type(exc).__name__}: {detail}"[:200]
