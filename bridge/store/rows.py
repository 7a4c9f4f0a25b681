"""What the poller plans and the store writes: plain rows, decided outside SQL, written in one go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Claim:
    """A job leased for one poll, and when it was due (for the lag metric)."""

    job: JobRow
    due_at: datetime


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """The job's new state and schedule after a poll; writing it also ends the lease."""

    snapshot: dict[str, Any] | None
    status: str | None
    final: bool
    next_poll_at: datetime | None
    interval_s: float
    priority: int
    last_polled_at: datetime | None
    last_changed_at: datetime | None
    not_found_count: int
    first_not_found_at: datetime | None
    error_count: int
    failure_count: int  # polls in a row whose processing raised


@dataclass(frozen=True, slots=True)
class JobRow(JobUpdate):
    """An upstream job as stored: its key, plus the state and schedule a poll updates."""

    account: str
    job_id: str


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event row: its payload is the CONTRACT section 4 event."""

    id: str
    watch_id: str
    sequence: int
    type: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """One event's delivery to one destination, pending until sent."""

    id: str
    event_id: str
    watch_id: str
    sequence: int
    destination: str
    next_attempt_at: datetime


@dataclass(frozen=True, slots=True)
class WatchChange:
    """A watch's new sequence counter and, when it ended, its final status and error."""

    id: str
    last_sequence: int
    status: str
    first_polled_at: datetime | None
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class JobWrite:
    """Everything one poll (or one sweep) writes for one job, in one transaction."""

    job: JobUpdate | None = None  # None leaves the job's schedule and lease alone
    stop_polling: bool = False  # with job=None: no active watch is left, so stop polling
    events: list[NewEvent] = field(default_factory=list)
    deliveries: list[NewDelivery] = field(default_factory=list)
    watches: list[WatchChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """One account's stored budget: the pacing clock and what the upstream last said."""

    next_slot_at: datetime | None = None  # GCRA theoretical arrival time of the next poll
    paused_until: datetime | None = None
    remaining: int | None = None  # X-RateLimit-Remaining, counted down locally as polls start
    reset_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountDemand:
    """What a claim found for one account: its budget row, due jobs, and polls already spent."""

    account: str
    budget: BudgetRow
    wanted: int  # due jobs that could be polled now
    used_last_hour: int  # polls started in the rolling hour, by every replica
    oldest_in_window: datetime | None
    in_flight: int  # polls leased and not yet written


@dataclass(frozen=True, slots=True)
class BudgetGrant:
    """The budget policy's answer: polls to start now, the row after them, when to ask again."""

    count: int
    budget: BudgetRow
    next_grant_at: datetime


GrantPolicy = Callable[[AccountDemand], BudgetGrant]
