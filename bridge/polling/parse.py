"""parse_job / parse_rate_limit: the upstream's answers, read defensively.

Every string a job's answer gives the bridge (ids, statuses, texts) passes through `storable` here,
the one door upstream text comes in by: a NUL or a lone surrogate in it would otherwise fail the
poll's write (events, snapshots, import failures), and the job would be polled again for nothing.
The list's next_cursor is sent back upstream as it came, so it is refused instead when no URL can
carry it. Ids are checked for duplicates once replaced: two ids that differ only where text was
replaced ("a\\ud800", "a\\udbff") make the answer Malformed, as any duplicate does, rather than
two items sharing one id."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from bridge.events.snapshot import ItemSnapshot, JobSnapshot
from bridge.polling.outcomes import JobPage, RateLimit
from bridge.storable import storable

# A count (of a job's items, of its credits) beyond what a 32-bit column holds is no answer to
# store: the import's tallies are 32-bit on PostgreSQL, and a job holds 1 to 20 images.
MAX_COUNT = 2**31 - 1
_UINT = re.compile(r"[0-9]{1,15}")
_SECONDS = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,9})?")
# X-RateLimit-Reset outside 2001..5138 is no Unix time (a delta in seconds, most likely): dropped.
_EPOCH_MIN = 1_000_000_000
_EPOCH_MAX = 100_000_000_000


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


MAX_CURSOR = 200  # a date-time; anything much longer is not one


def parse_job_page(data: object) -> JobPage:
    """Build a JobPage from a decoded list response body; ValueError names what is unusable."""
    if not isinstance(data, dict):
        raise ValueError("body: expected a JSON object")
    raw_jobs = data.get("jobs")
    if not isinstance(raw_jobs, list):
        raise ValueError("jobs: expected an array")
    jobs = []
    for n, raw in enumerate(raw_jobs):
        if not isinstance(raw, dict):
            raise ValueError(f"jobs[{n}]: expected an object")
        jobs.append((_id(raw, where=f"jobs[{n}]").lower(), _status(raw, where=f"jobs[{n}]")))
    cursor = data.get("next_cursor")
    if cursor is not None and (
        not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR or not _utf8(cursor)
    ):
        raise ValueError("next_cursor: expected a date-time string or null")
    return JobPage(jobs=tuple(jobs), next_cursor=cursor)


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
    return storable(value)


def _status(obj: dict[str, object], *, where: str) -> str | None:
    """The status as sent, unknown values included; None when absent (a gap, not a change)."""
    value = obj.get("status")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}.status: expected a string")
    return storable(value)


def _count(obj: dict[str, object], key: str, *, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"{where}.{key}: expected an integer from 0 to {MAX_COUNT}")
    return value


def _text(obj: dict[str, object], key: str) -> str | None:
    """A display-only field: a wrong type is dropped rather than failing the whole poll."""
    value = obj.get(key)
    return storable(value) if isinstance(value, str) else None


def _utf8(text: str) -> bool:
    """False for text holding a lone surrogate: it could not be sent back in a URL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
