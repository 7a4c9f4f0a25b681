"""Sample events and jobs: what check-config renders every template against, and what tests use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.events.vocabulary import EVENT_TYPES
from bridge.rendering.view import template_context

SAMPLE_JOB_ID = "3f1c2b9a-7d4e-4c1a-9b2e-5a6f7c8d9e0f"
SAMPLE_PUBLIC_URL = "https://bridge.example.com"
_SAMPLE_ERRORS = (
    ("product_not_detected", 'No product found: the photo shows "packaging only" <box> & tape.'),
    ("image_too_small", "Source image is 320x240; at least 1024 px on the short side is needed."),
    ("unsafe_content", "The image was refused by the content policy.\nUpload a different photo."),
    ("source_unreachable", "Could not download the source image (HTTP 403 from the storage host)."),
)


def sample_job(*, status: str | None = "partially_completed") -> dict[str, Any]:
    """A 20-item job as JobSnapshot.to_dict() stores it; the default has failures and long errors."""
    items = []
    for n in range(1, 21):
        item_status = _sample_item_status(n, status)
        failed = item_status == "failed"
        code, message = _SAMPLE_ERRORS[n % len(_SAMPLE_ERRORS)] if failed else (None, None)
        done = item_status == "completed"
        items.append(
            {
                "id": f"7c0e5d1a-0000-4000-8000-{n:012d}",
                "external_id": f"sku-{n:04d}",
                "status": item_status,
                "result_url": f"https://cdn.example.com/results/sku-{n:04d}.png" if done else None,
                "thumbnail_url": f"https://cdn.example.com/thumbs/sku-{n:04d}.jpg"
                if done
                else None,
                "error_code": code,
                "error_message": message,
                "credits_used": 1 if done else 0,
            }
        )
    return {
        "id": SAMPLE_JOB_ID,
        "status": status,
        "total_items": 20,
        "completed_items": sum(1 for i in items if i["status"] == "completed"),
        "failed_items": sum(1 for i in items if i["status"] == "failed"),
        "credits_used": sum(i["credits_used"] for i in items),
        "items": items,
    }


def _sample_item_status(n: int, job_status: str | None) -> str:
    failing = n in (3, 8, 13, 17)
    if job_status in ("queued", None):
        return "queued"
    if job_status == "processing":
        return (
            "failed" if n == 3 else "completed" if n <= 7 else "processing" if n == 8 else "queued"
        )
    if job_status == "completed":
        return "completed"
    if job_status == "failed":
        return "failed"
    if job_status == "cancelled":
        return "failed" if n == 3 else "completed" if n <= 9 else "cancelled"
    return "failed" if failing else "completed"


_EVENT_JOB_STATUS = {"item": "processing", "watch.expired": "processing", "watch.failed": None}
_ITEM_EVENT_PICK = {"processing": 8, "completed": 7, "failed": 3, "cancelled": 12, "updated": 7}


def sample_event(event_type: str = "item.failed") -> dict[str, Any]:
    """A realistic CONTRACT section 4 payload of `event_type`, about the sample job."""
    kind, _, what = event_type.partition(".")
    job_status = what if kind == "job" else _EVENT_JOB_STATUS.get(event_type, "processing")
    if what == "cancelled" and kind == "item":
        job_status = "cancelled"
    job = sample_job(status=job_status)
    item = job["items"][_ITEM_EVENT_PICK.get(what, 3) - 1] if kind == "item" else None
    previous = {"queued": None, "processing": "queued", "updated": "completed"}.get(
        what, "processing"
    )
    data: dict[str, Any] = {
        "event_id": "evt_0194c3a1b2c3d4e5f60718293a4b5c6d",
        "watch_id": "wat_0194c3a1b2c0a1b2c3d4e5f6a7b8c9d0e1f2",
        "job_id": SAMPLE_JOB_ID,
        "account": "main",
        "sequence": 12,
        "metadata": {"order": "A-1042", "requested_by": "catalog-team"},
        "previous_status": previous,
        "job": None if event_type == "watch.failed" else _summary(job),
        "item": item,
    }
    if event_type == "watch.failed":
        data["error"] = {"code": "job_not_found", "message": "The upstream job was not found."}
    if event_type == "watch.expired":
        data["error"] = {"code": "watch_expired", "message": "The watch reached its 48 h TTL."}
    return {"type": event_type, "timestamp": "2026-11-28T12:00:00Z", "data": data}


def _summary(job: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("status", "total_items", "completed_items", "failed_items", "credits_used")
    return {k: job[k] for k in keys}


def sample_context(
    event_type: str, *, public_url: str | None = SAMPLE_PUBLIC_URL
) -> dict[str, Any]:
    """What a template sees for `sample_event(event_type)` with the job as it then stood."""
    payload = sample_event(event_type)
    summary = payload["data"]["job"]
    job = sample_job(status=summary["status"]) if summary is not None else None
    return template_context(payload=payload, job=job, public_url=public_url)


def sample_contexts() -> list[dict[str, Any]]:
    """Every event type with a matching job, plus the awkward cases: no job, no status, no URL."""
    contexts = [sample_context(event_type) for event_type in EVENT_TYPES]
    no_status = sample_event("job.processing")
    no_status["data"]["job"]["status"] = None
    contexts.append(
        template_context(payload=no_status, job=sample_job(status=None), public_url=None)
    )
    brand_new = sample_event("job.paused")  # an upstream status the bridge has never seen
    contexts.append(template_context(payload=brand_new, job=None, public_url=None))
    no_job = sample_event("item.failed")
    contexts.append(template_context(payload=no_job, job=None, public_url=SAMPLE_PUBLIC_URL))
    return contexts
