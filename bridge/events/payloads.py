"""event_payload(...): the event as receivers and templates see it (CONTRACT section 4). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.events.snapshot import ItemSnapshot, JobSnapshot


@dataclass(frozen=True, slots=True)
class WatchRef:
    """What an event says about the watch it belongs to."""

    id: str
    job_id: str
    account: str
    metadata: dict[str, str]


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as every timestamp the bridge shows."""
    return moment.isoformat().replace("+00:00", "Z")


def event_payload(
    *,
    event_type: str,
    event_id: str,
    sequence: int,
    watch: WatchRef,
    job: JobSnapshot | None,
    previous_status: str | None = None,
    item: ItemSnapshot | None = None,
    error: dict[str, str] | None = None,
    timestamp: datetime,
) -> dict[str, Any]:
    """Build one event; `error` is set only on watch.failed and watch.expired."""
    data: dict[str, Any] = {
        "event_id": event_id,
        "watch_id": watch.id,
        "job_id": watch.job_id,
        "account": watch.account,
        "sequence": sequence,
        "metadata": dict(watch.metadata),
        "previous_status": previous_status,
        "job": job.summary() if job is not None else None,
        "item": item.to_dict() if item is not None else None,
    }
    if error is not None:
        data["error"] = error
    return {"type": event_type, "timestamp": iso(timestamp), "data": data}
