"""Signed webhooks (Standard Webhooks): one POST per attempt, its outcome mapped for delivery."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

import httpx
import orjson

from bridge.clock import utcnow
from bridge.delivery import signing
from bridge.delivery.channels import Message, SendError, SendResult
from bridge.delivery.failures import http_status_is_permanent
from bridge.delivery.post import Answer, poster_for
from bridge.delivery.urlguard import IPAddress, Resolver, UnsafeURL, check_url, is_allowed_url
from bridge.outbound import parse_retry_after

log = logging.getLogger(__name__)


class WebhookChannel:
    """Posts each event as JSON to one URL, signed with every configured secret."""

    ends_within_timeout = True  # one deadline covers a whole send: DNS, connect, upload, answer

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
        self._poster = poster_for(client, timeout_s=timeout_s)
        self._allowed_hosts = tuple(allowed_hosts)
        self._allowed = is_allowed_url(url, allowed_hosts=self._allowed_hosts)
        self._timeout_s = timeout_s
        self._user_agent = user_agent
        self._resolve = resolve
        self._now = now

    async def send(self, message: Message) -> SendResult:
        """Make one signed POST of the event; raise SendError unless the receiver answered 2xx."""
        body = _compact_json(dict(message.payload))
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        try:
            # One deadline for the whole attempt: DNS, connect, upload and response headers.
            addresses = await self._check(deadline)
            answer = await self._post(message, body, addresses, deadline)
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
        return self._outcome(answer)

    async def _check(self, deadline: float) -> list[IPAddress]:
        """The guard's verdict: the addresses to connect to (none for an allowed host, which
        needs no DNS and so no timer)."""
        if self._allowed:
            return []
        async with asyncio.timeout_at(deadline):
            return await check_url(
                self._url, allowed_hosts=self._allowed_hosts, resolve=self._resolve
            )

    async def _post(
        self, message: Message, body: bytes, addresses: list[IPAddress], deadline: float
    ) -> Answer:
        """Send the request, to the checked addresses in turn when DNS had to be asked."""
        headers = {
            "content-type": "application/json",
            "user-agent": self._user_agent,
            "accept-encoding": "identity",
            **signing.headers(
                msg_id=message.event_id, timestamp=self._now(), body=body, secrets=self._secrets
            ),
        }
        url = httpx.URL(self._url) if addresses else None  # none: an allowed host, no DNS asked
        if url is None or _is_ip_literal(url.host):
            return await self._poster.post(self._url, headers, body, deadline=deadline)
        # Connect to exactly the addresses we checked, so a DNS answer that changes between the
        # check and the connect (DNS rebinding) cannot point us elsewhere. TLS still verifies the
        # name, and the poster keeps a connection made for one name from serving another.
        pinned_headers = {**headers, "host": url.netloc.decode("ascii")}
        name = url.raw_host.decode("ascii")
        for address in addresses[:-1]:
            try:
                return await self._poster.post(
                    str(url.copy_with(host=str(address))),
                    pinned_headers,
                    body,
                    deadline=deadline,
                    sni_hostname=name,
                )
            except httpx.ConnectError:
                continue
        pinned = str(url.copy_with(host=str(addresses[-1])))
        return await self._poster.post(
            pinned, pinned_headers, body, deadline=deadline, sni_hostname=name
        )

    def _outcome(self, answer: Answer) -> SendResult:
        status = answer.status
        if 200 <= status < 300:
            return SendResult(status_code=status, response_excerpt=answer.excerpt)
        message = f"HTTP {status}"
        if 300 <= status < 400:
            message += " (redirects are not followed)"
        raise SendError(
            message,
            status_code=status,
            retry_after_s=parse_retry_after(answer.retry_after, now=self._now()),
            response_excerpt=answer.excerpt,
            permanent=http_status_is_permanent(status),
        )


def _compact_json(payload: dict[str, object]) -> bytes:
    """Compact JSON with non-ASCII characters (and DEL) escaped (`\u00e9`), as json.dumps writes
    it: through orjson (json.dumps was 4% of a drain) unless the text holds such a character. The
    bytes are json.dumps' but for a small float's exponent (orjson writes 1e-7 for 1e-07: the
    same number)."""
    try:
        body: bytes | None = orjson.dumps(payload)
    except orjson.JSONEncodeError:  # what orjson refuses (a lone surrogate, a 65-bit integer)
        body = None
    if body is not None and body.isascii() and b"\x7f" not in body:
        return body
    return json.dumps(payload, separators=(",", ":")).encode("ascii")


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _describe(exc: httpx.HTTPError) -> str:
    detail = str(exc) or "no details"
    return f"{type(exc).__name__}: {detail}"[:200]
