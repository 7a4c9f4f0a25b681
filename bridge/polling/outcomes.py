"""Outcome: what one poll of the upstream came to, one type per status code or failure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from bridge.events.snapshot import JobSnapshot


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


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of GET /product-photo-jobs: each job's id and status, and the next page's cursor."""

    jobs: tuple[tuple[str, str | None], ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Listed(_Answer):
    """A 2xx with a usable page of jobs (discovery's list request)."""

    page: JobPage


Failure: TypeAlias = (
    Unauthorized | NotFound | RateLimited | ServerError | TimedOut | ConnectionFailed | Malformed
)
Outcome: TypeAlias = Ok | Failure
ListOutcome: TypeAlias = Listed | Failure
