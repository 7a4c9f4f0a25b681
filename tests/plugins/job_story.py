"""The events of one job's life as channels receive them, and a StateStore kept in memory."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.delivery.channels import Message
from bridge.events.snapshot import ItemSnapshot, JobSnapshot

JOB_ID = "5b2d8c4e-1f3a-4e6b-9c7d-0a1b2c3d4e5f"
START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class MemoryState:
    """The StateStore protocol on a dict, copying values in and out as a database would."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    async def get_state(self, key: str) -> dict[str, Any] | None:
        value = self.values.get(key)
        return copy.deepcopy(value) if value is not None else None

    async def put_state(self, key: str, value: dict[str, Any]) -> None:
        self.values[key] = copy.deepcopy(value)

    async def claim_state(self, key: str, value: dict[str, Any]) -> dict[str, Any] | None:
        if key in self.values:
            return copy.deepcopy(self.values[key])
        self.values[key] = copy.deepcopy(value)
        return None


def job_story(
    *,
    items: int = 20,
    failing: frozenset[int] = frozenset({3, 8}),
    error_message: str = "The background could not be separated from the product.",
    job_id: str = JOB_ID,
    account: str = "main",
    metadata: dict[str, str] | None = None,
    watch_id: str = "wat_story",
) -> list[Message]:
    """job.queued, job.processing, item.processing and item.completed|failed for each image in
    order, then the job's final event; each message carries the job as it stood at that event."""
    snapshot = JobSnapshot(
        id=job_id,
        status="queued",
        total_items=items,
        items=tuple(
            ItemSnapshot(id=f"item-{n:02d}", status="queued", external_id=f"sku-{n:02d}")
            for n in range(1, items + 1)
        ),
    )
    story: list[Message] = []

    def record(event_type: str, previous: str | None, item: ItemSnapshot | None = None) -> None:
        sequence = len(story) + 1
        event_id = f"evt_{job_id[:8]}_{watch_id}_{sequence:03d}"
        payload = {
            "type": event_type,
            "timestamp": (START + timedelta(minutes=sequence)).isoformat().replace("+00:00", "Z"),
            "data": {
                "event_id": event_id,
                "watch_id": watch_id,
                "job_id": job_id,
                "account": account,
                "sequence": sequence,
                "metadata": dict(metadata or {"order": "A-1042"}),
                "previous_status": previous,
                "job": snapshot.summary(),
                "item": item.to_dict() if item is not None else None,
            },
        }
        story.append(
            Message(
                delivery_id=f"dlv_{event_id}",
                event_id=event_id,
                event_type=event_type,
                timestamp=START + timedelta(minutes=sequence),
                payload=payload,
                job=snapshot.to_dict(),
            )
        )

    record("job.queued", None)
    snapshot = replace(snapshot, status="processing")
    record("job.processing", "queued")
    for n in range(1, items + 1):
        item = replace(snapshot.items[n - 1], status="processing")
        snapshot = _with_item(snapshot, item)
        record("item.processing", "queued", item)
        if n in failing:
            item = replace(
                item,
                status="failed",
                error_code="segmentation_failed",
                error_message=f"{error_message} (image {n})",
                credits_used=0,
            )
        else:
            item = replace(
                item,
                status="completed",
                credits_used=1,
                result_url=f"https://cdn.example.com/r/sku-{n:02d}.png",
                thumbnail_url=f"https://cdn.example.com/t/sku-{n:02d}.jpg",
            )
        snapshot = _with_item(snapshot, item)
        record(f"item.{item.status}", "processing", item)
    final = "failed" if len(failing) >= items else "partially_completed" if failing else "completed"
    snapshot = replace(snapshot, status=final)
    record(f"job.{final}", "processing")
    return story


def _with_item(job: JobSnapshot, item: ItemSnapshot) -> JobSnapshot:
    items = tuple(item if i.id == item.id else i for i in job.items)
    return replace(
        job,
        items=items,
        completed_items=sum(1 for i in items if i.status == "completed"),
        failed_items=sum(1 for i in items if i.status == "failed"),
        credits_used=sum(i.credits_used or 0 for i in items),
    )


def retried(message: Message) -> Message:
    """The same delivery tried again."""
    return replace(message, attempt=message.attempt + 1)
