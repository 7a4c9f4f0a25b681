"""UpstreamClient: AI Gen Studio's job endpoint for one account, one typed outcome per poll."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypedDict, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from bridge.clock import utcnow
from bridge.ids import clean_request_id
from bridge.outbound import parse_retry_after
from bridge.polling.outcomes import (
    ConnectionFailed,
    Failure,
    Listed,
    ListOutcome,
    Malformed,
    NotFound,
    Ok,
    Outcome,
    RateLimit,
    RateLimited,
    ServerError,
    TimedOut,
    Unauthorized,
)
from bridge.polling.parse import parse_job, parse_job_page, parse_rate_limit
from bridge.polling.wire import Reply, wire_for

log = logging.getLogger(__name__)

# Polls of one account come every ~30 s, so keep idle connections longer than httpx's 5 s default;
# a connection the server closed meanwhile is detected and dropped by both transports at checkout.
# One pool serves every account (bridge.polling.pool), up to the poller's 100 polls in flight.
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=55.0)

_TOKEN = re.compile(r"[\x21-\x7e]+")
LIST_LIMIT = 100  # the most the list endpoint answers per page: fewest list requests per round
_T = TypeVar("_T", Ok, Listed)


class _Meta(TypedDict):
    rate_limit: RateLimit | None
    request_id: str | None
    status_code: int | None


class UpstreamClient:
    """Polls one account's jobs over one keep-alive pool; every failure becomes an `Outcome`."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "photo-bridge",
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        # Validated here so httpx never builds an exception whose args hold the key.
        if not _TOKEN.fullmatch(api_key):
            raise ValueError("api_key must be non-empty printable ASCII without spaces")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError("timeout_s must be a positive number")
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._now = now
        self._base_url = base_url
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": user_agent,
        }
        self._client = httpx.AsyncClient(  # owns `transport` and closes it in aclose()
            base_url=base_url,
            transport=transport,
            limits=LIMITS,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            headers=headers,
        )
        # A poll's URL and headers are made here once and sent straight down the wire the client
        # would pick (a proxy from the environment included): the client's per-request merging of
        # URLs, headers, cookies and hooks, and around aiohttp httpx's own Request and Response,
        # cost a quarter of a poll's CPU. `bridge.polling.wire` says how each transport is sent.
        self._prefix = str(self._client.base_url).removesuffix("/") + "/"  # str() drops a bare "/"
        self._wire = wire_for(self._client, headers=headers)

    def __repr__(self) -> str:
        return f"UpstreamClient(base_url={self._base_url!r})"

    async def fetch_job(self, job_id: str, *, request_id: str | None = None) -> Outcome:
        """GET /product-photo-jobs/{job_id} once and return what happened; never raises for I/O."""
        if job_id in {"", ".", ".."}:
            raise ValueError("job_id must name a job")
        sent_id = clean_request_id(request_id) or secrets.token_hex(16)
        started = time.perf_counter()
        url = f"{self._prefix}product-photo-jobs/{quote(job_id, safe='')}"
        outcome: Outcome = await self._get(url, sent_id, _job)
        if isinstance(outcome, Ok) and outcome.snapshot.id.lower() != job_id.lower():
            outcome = Malformed(
                error="job.id is not the requested job",
                rate_limit=outcome.rate_limit,
                request_id=outcome.request_id,
                status_code=outcome.status_code,
            )
        self._log(outcome, job_id=job_id, sent_id=sent_id, elapsed_s=time.perf_counter() - started)
        return outcome

    async def list_jobs(
        self, *, status: str, cursor: str | None = None, limit: int = LIST_LIMIT
    ) -> ListOutcome:
        """GET /product-photo-jobs?status=&limit=&cursor= once (one page, newest first); never
        raises for I/O. Discovery follows `page.next_cursor` with further calls."""
        params = {"status": status, "limit": str(limit)}
        if cursor is not None:
            params["cursor"] = cursor
        sent_id = secrets.token_hex(16)
        started = time.perf_counter()
        url = f"{self._prefix}product-photo-jobs?{urlencode(params, quote_via=quote)}"
        outcome: ListOutcome = await self._get(url, sent_id, _page)
        extra: dict[str, object] = {
            "status": status,
            "request_id": sent_id,
            "upstream_request_id": outcome.request_id,
            "status_code": outcome.status_code,
            "outcome": type(outcome).__name__,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if isinstance(outcome, Listed):
            extra["jobs"] = len(outcome.page.jobs)
        ok = isinstance(outcome, Listed | RateLimited)
        log.log(logging.INFO if ok else logging.WARNING, "upstream jobs listed", extra=extra)
        return outcome

    async def aclose(self) -> None:
        """Close the pool and its transport."""
        await self._client.aclose()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _get(
        self, url: str, sent_id: str, success: Callable[[object, _Meta], _T]
    ) -> _T | Failure:
        try:
            # This bounds the whole exchange, slow drips included (httpx's timeouts are per phase).
            async with asyncio.timeout(self._timeout_s):
                reply = await self._wire.get(url, {"X-Request-Id": sent_id})
        except (httpx.RequestError, aiohttp.ClientError, OSError) as exc:
            return self._failure(exc)
        return self._outcome(reply, success)

    def _failure(self, exc: BaseException) -> TimedOut | ConnectionFailed:
        # httpx_aiohttp maps refused and reset connections to httpx.ConnectTimeout: ask the cause.
        detail = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
        if isinstance(detail, TimeoutError | httpx.TimeoutException):
            return TimedOut()
        text = str(detail)
        error = f"{type(detail).__name__}: {text}" if text else type(detail).__name__
        return ConnectionFailed(error=error.replace(self._api_key, "[redacted]"))

    def _outcome(self, reply: Reply, success: Callable[[object, _Meta], _T]) -> _T | Failure:
        body, headers, status = reply.body, reply.headers, reply.status
        data = _json(body)
        meta = _Meta(
            rate_limit=parse_rate_limit(headers),
            request_id=_body_request_id(data) or clean_request_id(headers.get("X-Request-Id")),
            status_code=status,
        )
        if 200 <= status < 300:
            if body is None:
                return Malformed(error="body too large or its encoding is broken", **meta)
            if data is None:
                return Malformed(error="body is not JSON", **meta)
            try:
                return success(data, meta)
            except ValueError as exc:
                return Malformed(error=str(exc), **meta)
        if status == 401:
            return Unauthorized(**meta)
        if status == 404:
            return NotFound(**meta)
        if status == 429:
            retry = parse_retry_after(headers.get("Retry-After"), now=self._now())
            return RateLimited(retry, **meta)
        return ServerError(**meta)

    def _log(self, outcome: Outcome, *, job_id: str, sent_id: str, elapsed_s: float) -> None:
        ok = isinstance(outcome, Ok | NotFound | RateLimited)
        extra: dict[str, object] = {
            "job_id": job_id,
            "request_id": sent_id,
            "upstream_request_id": outcome.request_id,
            "status_code": outcome.status_code,
            "outcome": type(outcome).__name__,
            "elapsed_ms": round(elapsed_s * 1000, 1),
        }
        if isinstance(outcome, ConnectionFailed | Malformed):
            extra["error"] = outcome.error
        log.log(logging.INFO if ok else logging.WARNING, "upstream job fetched", extra=extra)


def _job(data: object, meta: _Meta) -> Ok:
    return Ok(parse_job(data), **meta)


def _page(data: object, meta: _Meta) -> Listed:
    return Listed(parse_job_page(data), **meta)


def _json(body: bytes | None) -> object:
    """The decoded body, or None when there is none or it is not JSON (orjson: a quarter of the
    json module's CPU on a 20-item job; like JSON itself, it refuses NaN and Infinity).

    orjson also refuses a lone surrogate's escape ("\\ud800": valid JSON, which parsing then makes
    storable), so a body holding such an escape is read again by the json module, numbers as
    orjson reads them: an integer beyond 64 bits as a float, nothing that is not finite."""
    if not body:
        return None
    try:
        return orjson.loads(body)
    except ValueError:
        if _SURROGATE_ESCAPE.search(body) is None:
            return None
    try:
        return json.loads(
            body.decode("utf-8"),
            parse_int=_as_orjson_int,
            parse_float=_finite,
            parse_constant=_not_json,
        )
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return None


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_U64 = 2**64 - 1


def _as_orjson_int(text: str) -> int | float:
    if len(text) > 20:  # more digits than 64 bits hold (and int() of thousands is slow)
        return _finite(text)
    value = int(text)
    return value if -(2**63) <= value <= _U64 else float(value)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is beyond a float")
    return value


def _not_json(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _body_request_id(data: object) -> str | None:
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict) and "request_id" in error:
        return clean_request_id(error["request_id"])
    return clean_request_id(data.get("request_id"))


def make_transport(kind: str = "aiohttp") -> httpx.AsyncBaseTransport | None:
    """Return the transport for `kind`: "httpx" (None: httpx's own httpcore) or "aiohttp"."""
    if kind == "httpx":
        return None
    if kind == "aiohttp":
        return _PollTransport()
    raise ValueError(f"unknown transport kind {kind!r}; expected 'httpx' or 'aiohttp'")


class _PollTransport(AiohttpTransport):
    """httpx_aiohttp's transport over a session without a cookie jar: one pool serves every
    account, so a cookie one account's answer set must not ride on another's polls."""

    def __init__(self) -> None:
        super().__init__(limits=LIMITS, client=self._session)

    def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=LIMITS.max_connections or 100,
            keepalive_timeout=LIMITS.keepalive_expiry,
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
