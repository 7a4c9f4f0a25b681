"""A simulated job and its state at a given instant: pure, no I/O, no clock of its own."""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bridge.devtools.simulator.settings import SimulatorSettings

ACTIVE = frozenset({"queued", "processing"})
JOB_STATUSES = ("queued", "processing", "completed", "partially_completed", "failed", "cancelled")

# What the upstream says when an image cannot be processed.
FAILURES = (
    ("product_not_detected", "No product could be detected in the source image."),
    ("image_unreadable", "The source image could not be downloaded or decoded."),
    ("image_too_small", "The source image is smaller than 512 pixels on its shortest side."),
)
CDN = "https://cdn.aigenstudio.app/sim"


def derive_uuid(*parts: object) -> str:
    """Return a version-4-shaped UUID that depends only on `parts` (keeps runs repeatable)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def canonical_uuid(value: str) -> str:
    """Return `value` as a lower-case hyphenated UUID, or raise ValueError naming job_id."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("job_id must be a UUID") from None


def format_time(moment: datetime) -> str:
    """Return the RFC 3339 form used in bodies and cursors, e.g. 2026-11-28T12:00:00.000000Z."""
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SimJob:
    """A job as the simulator stores it; `frozen` replaces computed progress when set."""

    id: str
    api_key: str
    created_at: datetime  # clock time at creation: progress is measured from here
    listed_at: datetime  # unique per key, shown as created_at and used as list cursor
    items: tuple[tuple[str, str | None], ...]  # (item id, external_id) in processing order
    frozen: dict[str, Any] | None = None
    webhook_url: str | None = None  # where the upstream's own signed webhooks go

    @property
    def sandbox(self) -> bool:
        """True for sandbox keys, as the upstream reports it."""
        return self.api_key.startswith("aigen_test_")


def item_failure(job_id: str, index: int, settings: SimulatorSettings) -> tuple[str, str] | None:
    """Return (error_code, error_message) when this item is fated to fail, else None."""
    digest = hashlib.sha256(f"{settings.seed}:{job_id}:{index}".encode()).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 >= settings.failure_rate:
        return None
    return FAILURES[digest[8] % len(FAILURES)]


def finishes_at(job: SimJob, settings: SimulatorSettings) -> datetime:
    """Return when the last item of an unfrozen job reaches a final state."""
    seconds = settings.queue_delay_s + max(settings.seconds_per_item, 0) * len(job.items)
    return job.created_at + timedelta(seconds=seconds)


def _items_done(elapsed: float, *, count: int, seconds_per_item: float) -> int:
    if seconds_per_item <= 0:
        return count
    return min(count, math.floor(elapsed / seconds_per_item))


def render_job(job: SimJob, *, now: datetime, settings: SimulatorSettings) -> dict[str, Any]:
    """Return the ProductPhotoJob body of `job` at `now` (the frozen body when there is one)."""
    if job.frozen is not None:
        return job.frozen
    elapsed = (now - job.created_at).total_seconds() - settings.queue_delay_s
    started = elapsed >= 0
    done = _items_done(elapsed, count=len(job.items), seconds_per_item=settings.seconds_per_item)
    done = done if started else 0
    items = []
    for index, (item_id, external_id) in enumerate(job.items):
        item = _item(item_id, external_id)
        if index < done:
            _finish_item(item, item_failure(job.id, index, settings))
        elif started and index == done:
            item["status"] = "processing"
        items.append(item)
    completed = sum(1 for i in items if i["status"] == "completed")
    failed = sum(1 for i in items if i["status"] == "failed")
    return {
        **summary_fields(job, status=_job_status(started, done, len(items), completed)),
        "completed_items": completed,
        "failed_items": failed,
        "credits_used": completed,
        "items": items,
    }


def _job_status(started: bool, done: int, total: int, completed: int) -> str:
    if not started:
        return "queued"
    if done < total:
        return "processing"
    if completed == total:
        return "completed"
    return "failed" if completed == 0 else "partially_completed"


def summary_fields(job: SimJob, *, status: Any) -> dict[str, Any]:
    """Return the ProductPhotoJobSummary fields (plus created_at, which the list cursor uses)."""
    return {
        "id": job.id,
        "status": status,
        "total_items": len(job.items),
        "credits_reserved": len(job.items),
        "sandbox": job.sandbox,
        "created_at": format_time(job.listed_at),
    }


def _item(item_id: str, external_id: str | None) -> dict[str, Any]:
    return {
        "id": item_id,
        "external_id": external_id,
        "status": "queued",
        "credits_reserved": 1,
        "credits_used": 0,
        "result_url": None,
        "thumbnail_url": None,
        "error_code": None,
        "error_message": None,
    }


def _finish_item(item: dict[str, Any], failure: tuple[str, str] | None) -> None:
    if failure is None:
        item["status"] = "completed"
        item["credits_used"] = 1
        item["result_url"] = f"{CDN}/{item['id']}.png"
        item["thumbnail_url"] = f"{CDN}/{item['id']}-thumb.webp"
    else:
        item["status"] = "failed"
        item["error_code"], item["error_message"] = failure


def summary_of(job: SimJob, body: dict[str, Any]) -> dict[str, Any]:
    """Return the list summary of `job` given its body; a frozen body wins field by field."""
    summary = {k: body.get(k, v) for k, v in summary_fields(job, status=None).items()}
    if "status" not in body:
        del summary["status"]  # a status the body leaves out stays out
    return summary
