"""AI Gen Studio client: one keep-alive connection pool per account, one typed outcome per poll."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeAlias, TypedDict
from urllib.parse import quote

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bridge.clock import utcnow
from bridge.snapshot import ItemSnapshot, JobSnapshot

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # a 20-item job is a few KiB; anything near this is not a job
MAX_REQUEST_ID = 160  # the upstream's limit for X-Request-Id
# Polls of one account come every ~30 s, so keep idle connections longer than httpx's 5 s default;
# a connection the server closed meanwhile is detected and dropped by both transports at checkout.
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=55.0)

_PRINTABLE = re.compile(r"[\x20-\x7e]+")
_TOKEN = re.compile(r"[\x21-\x7e]+")
_UINT = re.compile(r"[0-9]{1,15}")
_SECONDS = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,9})?")
# X-RateLimit-Reset outside 2001..5138 is no Unix time (a delta in seconds, most likely): dropped.
_EPOCH_MIN = 1_000_000_000
_EPOCH_MAX = 100_000_000_000


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The X-RateLimit-* headers of one response; a field is None when absent or not sane."""

    limit: int | None
    remaining: int | None
    reset_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Answer:
    """What every outcome carries: rate-limit headers, upstream's request id, status code."""

    rate_limit: RateLimit | None = None
    request_id: str | None = None
    status_code: int | None = None


@dataclass(frozen=True, slots=True)
class Ok(_Answer):
    """A 2xx with a usable job."""

    snapshot: JobSnapshot


@dataclass(frozen=True, slots=True)
class Unauthorized(_Answer):
    """401: the API key is missing, invalid, expired or revoked."""


@dataclass(frozen=True, slots=True)
class NotFound(_Answer):
    """404: no such job for this key's environment."""


@dataclass(frozen=True, slots=True)
class RateLimited(_Answer):
    """429: a rate or concurrency limit; `retry_after_s` from Retry-After when it was readable."""

    retry_after_s: float | None


@dataclass(frozen=True, slots=True)
class ServerError(_Answer):
    """5xx, or any status the API does not document for this call."""


@dataclass(frozen=True, slots=True)
class TimedOut(_Answer):
    """No complete answer within the client's timeout."""


@dataclass(frozen=True, slots=True)
class ConnectionFailed(_Answer):
    """The connection could not be made or broke before a complete answer."""

    error: str


@dataclass(frozen=True, slots=True)
class Malformed(_Answer):
    """A 2xx whose body is not a job this client can use."""

    error: str


Outcome: TypeAlias = (
    Ok
    | Unauthorized
    | NotFound
    | RateLimited
    | ServerError
    | TimedOut
    | ConnectionFailed
    | Malformed
)


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
        self._client = httpx.AsyncClient(  # owns `transport` and closes it in aclose()
            base_url=base_url,
            transport=transport,
            limits=LIMITS,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
        )

    def __repr__(self) -> str:
        return f"UpstreamClient(base_url={self._base_url!r})"

    async def fetch_job(self, job_id: str, *, request_id: str | None = None) -> Outcome:
        """GET /product-photo-jobs/{job_id} once and return what happened; never raises for I/O."""
        if job_id in {"", ".", ".."}:
            raise ValueError("job_id must name a job")
        sent_id = _clean_request_id(request_id) or uuid.uuid4().hex
        started = time.perf_counter()
        outcome = await self._get(f"product-photo-jobs/{quote(job_id, safe='')}", sent_id)
        if isinstance(outcome, Ok) and outcome.snapshot.id.lower() != job_id.lower():
            outcome = Malformed(
                error="job.id is not the requested job",
                rate_limit=outcome.rate_limit,
                request_id=outcome.request_id,
                status_code=outcome.status_code,
            )
        self._log(outcome, job_id=job_id, sent_id=sent_id, elapsed_s=time.perf_counter() - started)
        return outcome

    async def aclose(self) -> None:
        """Close the pool and its transport."""
        await self._client.aclose()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _get(self, path: str, sent_id: str) -> Outcome:
        try:
            # httpx's timeouts are per phase; this bounds the whole exchange, slow drips included.
            async with asyncio.timeout(self._timeout_s):
                headers = {"X-Request-Id": sent_id}
                async with self._client.stream("GET", path, headers=headers) as response:
                    body = await _read_body(response)
        except (httpx.RequestError, aiohttp.ClientError, OSError) as exc:
            return self._failure(exc)
        return self._outcome(response, body)

    def _failure(self, exc: BaseException) -> TimedOut | ConnectionFailed:
        # httpx_aiohttp maps refused and reset connections to httpx.ConnectTimeout: ask the cause.
        detail = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
        if isinstance(detail, TimeoutError | httpx.TimeoutException):
            return TimedOut()
        text = str(detail)
        error = f"{type(detail).__name__}: {text}" if text else type(detail).__name__
        return ConnectionFailed(error=error.replace(self._api_key, "[redacted]"))

    def _outcome(self, response: httpx.Response, body: bytes | None) -> Outcome:
        data = _json(body)
        status = response.status_code
        meta = _Meta(
            rate_limit=parse_rate_limit(response.headers),
            request_id=_body_request_id(data)
            or _clean_request_id(response.headers.get("X-Request-Id")),
            status_code=status,
        )
        if 200 <= status < 300:
            if body is None:
                return Malformed(error="body too large or its encoding is broken", **meta)
            if data is None:
                return Malformed(error="body is not JSON", **meta)
            try:
                return Ok(parse_job(data), **meta)
            except ValueError as exc:
                return Malformed(error=str(exc), **meta)
        if status == 401:
            return Unauthorized(**meta)
        if status == 404:
            return NotFound(**meta)
        if status == 429:
            retry = parse_retry_after(response.headers.get("Retry-After"), now=self._now())
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


async def _read_body(response: httpx.Response) -> bytes | None:
    """Return the decoded body, or None when it is over MAX_BODY_BYTES or its encoding is broken."""
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


def _json(body: bytes | None) -> object:
    """The decoded body, or None when there is none or it is not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _clean_request_id(value: object) -> str | None:
    """`value` when it is a request id safe to send and log (printable, at most 160 chars)."""
    if isinstance(value, str) and len(value) <= MAX_REQUEST_ID and _PRINTABLE.fullmatch(value):
        return value
    return None


def _body_request_id(data: object) -> str | None:
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict) and "request_id" in error:
        return _clean_request_id(error["request_id"])
    return _clean_request_id(data.get("request_id"))


def make_transport(kind: str = "aiohttp") -> httpx.AsyncBaseTransport | None:
    """Return the transport for `kind`: "httpx" (None: httpx's own httpcore) or "aiohttp"."""
    if kind == "httpx":
        return None
    if kind == "aiohttp":
        return AiohttpTransport(limits=LIMITS)
    raise ValueError(f"unknown transport kind {kind!r}; expected 'httpx' or 'aiohttp'")


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """Read X-RateLimit-Limit/-Remaining/-Reset (Unix seconds); None when none is present."""
    names = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
    raw_limit, raw_remaining, raw_reset = (headers.get(name) for name in names)
    if raw_limit is None and raw_remaining is None and raw_reset is None:
        return None
    limit = _header_uint(raw_limit)
    remaining = _header_uint(raw_remaining)
    if limit is not None and remaining is not None and remaining > limit:
        remaining = None  # one of them is wrong; the limit is the steadier figure
    reset_at = None
    if raw_reset is not None and _SECONDS.fullmatch(raw_reset.strip()):
        epoch = float(raw_reset)
        if _EPOCH_MIN <= epoch <= _EPOCH_MAX:
            reset_at = datetime.fromtimestamp(epoch, tz=UTC)
    return RateLimit(limit=limit, remaining=remaining, reset_at=reset_at)


def _header_uint(value: str | None) -> int | None:
    if value is None or not _UINT.fullmatch(value.strip()):
        return None
    return int(value)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Return Retry-After (delay-seconds or HTTP-date) as seconds from `now`; None if unreadable."""
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def parse_job(data: object) -> JobSnapshot:
    """Build a JobSnapshot from a decoded GET response body; ValueError names what is unusable."""
    if not isinstance(data, dict):
        raise ValueError("body: expected a JSON object")
    job = data.get("job")
    if not isinstance(job, dict):
        raise ValueError("job: expected an object")
    job_id = _id(job, where="job")
    raw_items = job.get("items")
    if raw_items is None:
        raw_items = []
    elif not isinstance(raw_items, list):
        raise ValueError("job.items: expected an array")
    items = tuple(_parse_item(raw, where=f"job.items[{n}]") for n, raw in enumerate(raw_items))
    if len({item.id for item in items}) != len(items):
        raise ValueError("job.items: duplicate item id")
    return JobSnapshot(
        id=job_id,
        status=_status(job, where="job"),
        total_items=_count(job, "total_items", where="job") or 0,
        completed_items=_count(job, "completed_items", where="job") or 0,
        failed_items=_count(job, "failed_items", where="job") or 0,
        credits_used=_count(job, "credits_used", where="job") or 0,
        items=items,
    )


def _parse_item(raw: object, *, where: str) -> ItemSnapshot:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")
    return ItemSnapshot(
        id=_id(raw, where=where),
        status=_status(raw, where=where),
        external_id=_text(raw, "external_id"),
        result_url=_text(raw, "result_url"),
        thumbnail_url=_text(raw, "thumbnail_url"),
        error_code=_text(raw, "error_code"),
        error_message=_text(raw, "error_message"),
        credits_used=_count(raw, "credits_used", where=where),
    )


def _id(obj: dict[str, object], *, where: str) -> str:
    value = obj.get("id")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}.id: expected a non-empty string")
    return value


def _status(obj: dict[str, object], *, where: str) -> str | None:
    """The status as sent, unknown values included; None when absent (a gap, not a change)."""
    value = obj.get("status")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}.status: expected a string")
    return value


def _count(obj: dict[str, object], key: str, *, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}.{key}: expected a non-negative integer")
    return value


def _text(obj: dict[str, object], key: str) -> str | None:
    """A display-only field: a wrong type is dropped rather than failing the whole poll."""
    value = obj.get(key)
    return value if isinstance(value, str) else None
