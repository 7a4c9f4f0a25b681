"""template_context(...): the names every template sees, built from an event and the latest job."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.events.snapshot import JOB_FINAL


def template_context(
    *, payload: Mapping[str, Any], job: Mapping[str, Any] | None, public_url: str | None
) -> dict[str, Any]:
    """The names every template can use: the event as CONTRACT section 4, the latest job, counts."""
    data: Mapping[str, Any] = payload.get("data") or {}
    view = _job_view(data, job)
    items = view["items"]
    total = view["total_items"] or len(items)
    if items:
        done = sum(1 for i in items if i.get("status") == "completed")
        failed = sum(1 for i in items if i.get("status") == "failed")
    else:
        done, failed = view["completed_items"], view["failed_items"]
    cancelled = sum(1 for i in items if i.get("status") == "cancelled")
    finished = done + failed + cancelled
    return {
        "event": payload,
        "type": payload.get("type", ""),
        "timestamp": payload.get("timestamp", ""),
        "data": data,
        "item": data.get("item"),
        "job": view,
        "counts": {
            "total": total,
            "done": done,
            "failed": failed,
            "cancelled": cancelled,
            "pending": max(0, total - finished),
            "percent": min(100, round(100 * finished / total)) if total else 0,
            "credits_used": view["credits_used"],
        },
        "failed_items": [i for i in items if i.get("status") == "failed"],
        "final": view["status"] in JOB_FINAL,
        "bridge_url": (public_url or "").rstrip("/"),
    }


def _job_view(data: Mapping[str, Any], job: Mapping[str, Any] | None) -> dict[str, Any]:
    """The latest stored job, else what the event itself says about it; always the same keys."""
    source: Mapping[str, Any] = job or data.get("job") or {}
    items = list(job.get("items") or []) if job else []
    if not items and data.get("item"):
        items = [data["item"]]
    return {
        "id": source.get("id") or data.get("job_id") or "",
        "status": source.get("status"),
        "total_items": source.get("total_items") or 0,
        "completed_items": source.get("completed_items") or 0,
        "failed_items": source.get("failed_items") or 0,
        "credits_used": source.get("credits_used") or 0,
        "items": items,
    }
