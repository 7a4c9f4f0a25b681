"""What the poller plans and the store writes: plain rows, decided outside SQL, written in one go."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.store.records import EventRecord


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


# A job stream's positions: the poll's time in ms times this, plus a rank within the poll.
POSITIONS_PER_POLL = 1000


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """One event's delivery to one destination, pending until sent.

    Deliveries of one `stream` to one destination go out in `position` order. A watch's own webhook
    is the stream `watch:<id>` ordered by sequence; a configured channel hears a job's changes as the
    stream `job:<account>/<job id>`, once per `change_key` (None for a watch's own webhook).
    """

    id: str
    event_id: str
    watch_id: str
    sequence: int
    destination: str
    next_attempt_at: datetime
    stream: str
    position: int
    change_key: str | None = None


@dataclass(frozen=True, slots=True)
class WatchChange:
    """A watch's new sequence counter and, when it ended, its final status and error."""

    id: str
    last_sequence: int
    status: str
    first_polled_at: datetime | None
    error_code: str | None
    error_message: str | None
    # For a watch in an import: what its job adds to the import now (a Contribution's dict).
    counted: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class JobWrite:
    """Everything one poll (or one sweep) writes for one job, in one transaction."""

    job: JobUpdate | None = None  # None leaves the job's schedule and lease alone
    stop_polling: bool = False  # with job=None: no active watch is left, so stop polling
    events: list[EventRecord] = field(default_factory=list)
    deliveries: list[NewDelivery] = field(default_factory=list)
    watches: list[WatchChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """One account's stored budget: the pacing clock and what the upstream last said."""

    next_slot_at: datetime | None = None  # GCRA theoretical arrival time of the next poll
    paused_until: datetime | None = None
    remaining: int | None = None  # X-RateLimit-Remaining, counted down locally as polls start
    reset_at: datetime | None = None
    unauthorized_since: datetime | None = None  # the first 401 since the key last worked


@dataclass(frozen=True, slots=True)
class Waiting:
    """A due job in one client's queue; a job several clients watch waits in each one's queue."""

    client: str  # "" for a job no active watch wants (its next poll stops it)
    account: str
    job_id: str
    priority: int  # 1: a watch was just registered, or the upstream signalled the job
    due_at: datetime
    last_polled_at: datetime | None


@dataclass(frozen=True, slots=True)
class AccountDemand:
    """What a claim found for one account: its budget row, due jobs, and polls already spent."""

    account: str
    budget: BudgetRow
    queue: tuple[
        Waiting, ...
    ]  # due jobs that could be polled now, in every watching client's queue
    last_served: Mapping[str, datetime]  # each client's latest poll in the rolling hour
    used_last_hour: int  # polls started in the rolling hour, by every replica
    oldest_in_window: datetime | None
    in_flight: int  # polls leased and not yet written

    @property
    def wanted(self) -> int:
        """How many distinct jobs could be polled now."""
        return len({w.job_id for w in self.queue})


@dataclass(frozen=True, slots=True)
class BudgetGrant:
    """The budget policy's answer: the polls to start now, in order and each charged to a client,
    the row after them, and when to ask again."""

    chosen: tuple[Waiting, ...]
    budget: BudgetRow
    next_grant_at: datetime


GrantPolicy = Callable[[AccountDemand], BudgetGrant]
