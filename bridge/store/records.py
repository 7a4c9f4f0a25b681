"""Rows as frozen dataclasses: what the store hands to the rest of the bridge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

WATCH_STATUSES = ("active", "completed", "expired", "failed", "cancelled")
DELIVERY_STATUSES = ("pending", "delivered", "dead")


@dataclass(frozen=True, slots=True)
class WatchRecord:
    """A watch with the shared upstream job's state it reports on."""

    id: str
    client: str
    account: str
    job_id: str
    status: str
    webhook_url: str | None
    events: tuple[str, ...]
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    last_sequence: int
    first_polled_at: datetime | None
    error_code: str | None
    error_message: str | None
    job: dict[str, Any] | None  # the last stored snapshot of the upstream job, with items
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    import_id: str | None = None  # the import the watch belongs to
    counted: dict[str, Any] | None = None  # what its job last added to the import's roll-up


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One recorded event of one watch."""

    id: str
    watch_id: str
    sequence: int
    type: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One event on its way to one destination, and how its attempts went."""

    id: str
    event_id: str
    watch_id: str
    sequence: int
    destination: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
