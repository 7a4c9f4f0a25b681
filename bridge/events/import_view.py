"""ImportRecord and import_view(record, now): an import as the API, events and templates show it. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.events.payloads import iso
from bridge.events.rollup import Tally, eta, rate_per_hour


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """A stored import: who made it, where its events go, and its roll-up."""

    id: str
    client: str
    account: str
    name: str
    webhook_url: str | None
    events: tuple[str, ...]
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    last_sequence: int
    tally: Tally


def _when(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def import_view(record: ImportRecord, *, now: datetime) -> dict[str, Any]:
    """The Import of CONTRACT section 7; rate and ETA are worked out for `now`."""
    t = record.tally
    moment = eta(t, now=now)
    return {
        "id": record.id,
        "name": record.name,
        "account": record.account,
        "status": t.status,
        "closed": t.closed,
        "expected_jobs": t.expected_jobs,
        "jobs": dict(t.jobs),
        "images": {
            "total": t.images_total,
            "completed": t.images_completed,
            "failed": t.images_failed,
            "pending": max(0, t.images_total - t.images_finished),
        },
        "credits_used": t.credits_used,
        "rate_images_per_hour": None if t.ended else rate_per_hour(t, now=now),
        "eta": _when(moment),
        "stalled": t.stalled,
        "webhook_url": record.webhook_url,
        "events": list(record.events),
        "metadata": dict(record.metadata),
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "ended_at": _when(t.ended_at),
    }


def import_event_payload(
    *, event_type: str, event_id: str, sequence: int, record: ImportRecord, now: datetime
) -> dict[str, Any]:
    """One import event (CONTRACT section 7): the import as it stands after the change."""
    return {
        "type": event_type,
        "timestamp": iso(now),
        "data": {
            "event_id": event_id,
            "import_id": record.id,
            "account": record.account,
            "sequence": sequence,
            "metadata": dict(record.metadata),
            "import": import_view(record, now=now),
        },
    }
