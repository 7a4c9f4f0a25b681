"""plan_poll / plan_end: decide what one poll (or a watch's end) writes. Pure: no I/O, no clock.

The store calls these inside its transaction with the job's row and its active watches, locked, so
sequence numbers are allocated from what is really stored and never collide or leave gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from random import Random

from bridge.config import PollingConfig
from bridge.events.change_key import OBSERVED, change_key, count_changes
from bridge.events.diff import Change, carry_over, diff
from bridge.events.import_events import import_stream
from bridge.events.payloads import WatchRef, event_payload
from bridge.events.rollup import contribution
from bridge.events.routing import WEBHOOK_URL, Router, WatchRoute
from bridge.events.snapshot import JobSnapshot
from bridge.ids import new_id
from bridge.polling.apikey import CONFIRM_AFTER
from bridge.polling.outcomes import NotFound, Ok, Outcome, RateLimited, Unauthorized
from bridge.store.records import EventRecord, WatchRecord
from bridge.store.rows import (
    POSITIONS_PER_POLL,
    JobRow,
    JobUpdate,
    JobWrite,
    NewDelivery,
    WatchChange,
)

NOT_FOUND_POLLS = 3  # a 404 seen this many times ...
NOT_FOUND_SPAN = timedelta(seconds=30)  # ... over at least this long fails the watch
NOT_FOUND_RETRY_S = 15.0
STRETCH = 1.5  # an unchanged job is polled 1.5 times less often each time, up to max_interval_s
JITTER = 0.1  # intervals vary by ±10% so jobs registered together drift apart
# A job stream's positions: the poll's time in ms, then a rank within the poll (item order, then
# the job's event, then a watch's end); the store moves a poll past what its stream already holds.
JOB_RANK = POSITIONS_PER_POLL - 2
MAX_BACKOFF_DOUBLINGS = 16  # 2**errors beyond this only overflows; max_interval_s caps it anyway
PROCESSING_FAILURES = 3  # polls in a row whose processing raised end the job's watches

ERRORS = {
    "invalid_api_key": "the upstream refused the account's API key (HTTP 401), again a minute later",
    "job_not_found": "the upstream answered 404 for this job repeatedly",
    "watch_expired": "the watch reached its time to live before the job ended",
    "internal_error": "the bridge failed to process this job's polls repeatedly",
}


@dataclass(frozen=True, slots=True)
class PlanContext:
    """What planning needs besides the rows: polling intervals, routes, the time, randomness."""

    polling: PollingConfig
    router: Router
    now: datetime
    rng: Random
    new_id: Callable[[str], str] = new_id


def base_interval(status: str | None, ctx: PlanContext) -> float:
    """The configured interval for a job status (queued or unknown polls slower)."""
    polling = ctx.polling
    if status == "processing":
        return polling.processing_interval_s
    return (
        polling.queued_interval_s if status in (None, "queued") else polling.processing_interval_s
    )


def _jittered(seconds: float, ctx: PlanContext) -> datetime:
    return ctx.now + timedelta(seconds=seconds * ctx.rng.uniform(1 - JITTER, 1 + JITTER))


class _Writer:
    """Accumulates one job's events, deliveries and watch changes with gap-free sequences.

    Watches are given oldest first, so a configured channel gets the oldest matching watch's event
    for each change of the job, and only that one (CONTRACT section 6); a watch's own webhook gets
    every event of that watch.
    """

    def __init__(self, ctx: PlanContext, job: JobSnapshot | None, observed: dict[str, int]) -> None:
        self.ctx, self.job, self.observed = ctx, job, observed
        self.events: list[EventRecord] = []
        self.deliveries: list[NewDelivery] = []
        self._told: set[tuple[str, str]] = set()  # (channel, change key) given a delivery
        self._base = int(ctx.now.timestamp() * 1000) * POSITIONS_PER_POLL
        items = job.items if job is not None else ()
        self._rank = {item.id: index for index, item in enumerate(items)}

    def add(
        self,
        watch: WatchRecord,
        sequence: int,
        event_type: str,
        *,
        change: Change | None = None,
        error_code: str | None = None,
    ) -> None:
        event_id = self.ctx.new_id("evt")
        payload = event_payload(
            event_type=event_type,
            event_id=event_id,
            sequence=sequence,
            watch=WatchRef(watch.id, watch.job_id, watch.account, watch.metadata),
            job=self.job,
            previous_status=change.previous_status if change else None,
            item=change.item if change else None,
            error={"code": error_code, "message": ERRORS[error_code]} if error_code else None,
            timestamp=self.ctx.now,
        )
        self.events.append(
            EventRecord(event_id, watch.id, sequence, event_type, payload, self.ctx.now)
        )
        route = WatchRoute(
            watch.client,
            watch.account,
            watch.webhook_url,
            watch.events,
            watch.import_id,
            job_id=watch.job_id,
        )
        for destination, grouped in self.ctx.router.grouped_destinations(event_type, route):
            if destination == WEBHOOK_URL:
                stream, position, key = f"watch:{watch.id}", sequence, None
            else:
                key = self._key(watch, event_type, change)
                if (destination, key) in self._told:
                    continue
                self._told.add((destination, key))
                stream = f"job:{watch.account}/{watch.job_id}"
                if grouped and watch.import_id is not None:
                    # Told inside the import's message: the channel reads the import from the stream.
                    stream = f"{import_stream(watch.import_id)}/{stream}"
                position = self._position(event_type, change)
            self.deliveries.append(
                NewDelivery(
                    self.ctx.new_id("dlv"),
                    event_id,
                    watch.id,
                    sequence,
                    destination,
                    self.ctx.now,
                    stream=stream,
                    position=position,
                    change_key=key,
                )
            )

    def _key(self, watch: WatchRecord, event_type: str, change: Change | None) -> str:
        return change_key(
            account=watch.account,
            job_id=watch.job_id,
            event_type=event_type,
            change=change,
            observed=self.observed,
        )

    def _position(self, event_type: str, change: Change | None) -> int:
        """Where a change goes in its job's stream: after earlier polls; item order, job, watch."""
        if change is not None and change.item is not None:
            rank = min(self._rank.get(change.item.id, 0), JOB_RANK - 1)
        else:
            rank = JOB_RANK if event_type.startswith("job.") else JOB_RANK + 1
        return self._base + rank


def _oldest_first(watches: list[WatchRecord]) -> list[WatchRecord]:
    return sorted(watches, key=lambda w: (w.created_at, w.id))


def _counted(
    watch: WatchRecord, status: str, snapshot: JobSnapshot | None
) -> dict[str, object] | None:
    """What the watch's job adds to its import now; None for a watch outside imports."""
    if watch.import_id is None:
        return None
    return contribution(status, snapshot).to_dict()


def _same(watch: WatchRecord, change: WatchChange) -> bool:
    """The change leaves the watch as stored (a quiet poll of an active watch)."""
    return (
        change.last_sequence == watch.last_sequence
        and change.status == watch.status
        and change.first_polled_at == watch.first_polled_at
        and change.error_code == watch.error_code
        and change.error_message == watch.error_message
        and change.counted == watch.counted
    )


def _observed(job: JobRow) -> dict[str, int]:
    """How many changes of each item and of the job's status earlier polls observed."""
    return dict((job.snapshot or {}).get(OBSERVED) or {})


def _job_update(job: JobRow, **changes: object) -> JobUpdate:
    current = JobUpdate(**{name: getattr(job, name) for name in JobUpdate.__slots__})
    changes.setdefault("priority", 0)
    changes.setdefault("failure_count", 0)  # a poll processed without raising ends the run
    return replace(current, **changes)  # type: ignore[arg-type]


def plan_end(
    job: JobRow,
    watches: list[WatchRecord],
    ctx: PlanContext,
    *,
    reason: str,
    only_expired: bool = False,
) -> JobWrite:
    """End watches with `watch.failed` or `watch.expired`; the job keeps its schedule unless none is left."""
    snapshot = JobSnapshot.from_dict(job.snapshot) if job.snapshot else None
    writer = _Writer(ctx, snapshot, _observed(job))
    changes = []
    status = "expired" if reason == "watch_expired" else "failed"
    for w in _oldest_first(watches):
        if only_expired and w.expires_at > ctx.now:
            continue
        writer.add(w, w.last_sequence + 1, f"watch.{status}", error_code=reason)
        changes.append(
            WatchChange(
                w.id,
                w.last_sequence + 1,
                status,
                w.first_polled_at,
                reason,
                ERRORS[reason],
                _counted(w, status, snapshot),
            )
        )
    left = len(watches) - len(changes)
    return JobWrite(
        stop_polling=left == 0,
        events=writer.events,
        deliveries=writer.deliveries,
        watches=changes,
    )


def plan_poll(
    job: JobRow, watches: list[WatchRecord], outcome: Outcome, ctx: PlanContext
) -> JobWrite:
    """What to write after one poll of `job` answered `outcome`."""
    if isinstance(outcome, Ok):
        return _plan_snapshot(job, watches, outcome.snapshot, ctx)
    if isinstance(outcome, Unauthorized):
        # Not proof yet: poll again once a second 401 would be; the poller fails the account then.
        due = ctx.now + CONFIRM_AFTER if watches else None
        return JobWrite(job=_job_update(job, next_poll_at=due, priority=job.priority))
    if isinstance(outcome, NotFound):
        return _plan_not_found(job, watches, ctx)
    if isinstance(outcome, RateLimited):
        wait = outcome.retry_after_s if outcome.retry_after_s is not None else 60.0
        due = ctx.now + timedelta(seconds=wait) if watches else None
        return JobWrite(job=_job_update(job, next_poll_at=due, priority=job.priority))
    # 5xx, timeouts, connection errors, garbage: back off this job, never an event.
    errors = job.error_count + 1
    backoff = min(
        base_interval(job.status, ctx) * 2 ** min(errors, MAX_BACKOFF_DOUBLINGS),
        ctx.polling.max_interval_s,
    )
    due = _jittered(backoff, ctx) if watches else None
    return JobWrite(
        job=_job_update(job, next_poll_at=due, error_count=errors, priority=job.priority)
    )


def plan_failure(job: JobRow, watches: list[WatchRecord], ctx: PlanContext) -> JobWrite:
    """Processing a poll of `job` raised (a bridge bug): count it, back off, and on the
    PROCESSING_FAILURES-th in a row end its watches with `internal_error` and stop polling it."""
    failures = job.failure_count + 1
    if failures >= PROCESSING_FAILURES:
        ended = plan_end(job, watches, ctx, reason="internal_error")
        update = _job_update(job, next_poll_at=None, last_polled_at=ctx.now, failure_count=failures)
        return replace(ended, job=update)
    backoff = min(
        base_interval(job.status, ctx) * 2 ** min(failures, MAX_BACKOFF_DOUBLINGS),
        ctx.polling.max_interval_s,
    )
    due = _jittered(backoff, ctx) if watches else None
    update = _job_update(
        job, next_poll_at=due, last_polled_at=ctx.now, failure_count=failures, priority=job.priority
    )
    return JobWrite(job=update)


def _plan_not_found(job: JobRow, watches: list[WatchRecord], ctx: PlanContext) -> JobWrite:
    count = job.not_found_count + 1
    first = job.first_not_found_at or ctx.now
    if count >= NOT_FOUND_POLLS and ctx.now - first >= NOT_FOUND_SPAN:
        ended = plan_end(job, watches, ctx, reason="job_not_found")
        update = _job_update(job, next_poll_at=None, last_polled_at=ctx.now, not_found_count=count)
        return replace(ended, job=update)
    update = _job_update(
        job,
        next_poll_at=ctx.now + timedelta(seconds=NOT_FOUND_RETRY_S),
        last_polled_at=ctx.now,
        not_found_count=count,
        first_not_found_at=first,
    )
    return JobWrite(job=update)


def _as_stored(job: JobRow, fetched: JobSnapshot) -> bool:
    """True when the poll found the job just as stored (most polls): then nothing changed, and
    reading the stored snapshot back and diffing it, most of a quiet poll's CPU, can be skipped."""
    stored = job.snapshot
    return bool(stored) and {**fetched.to_dict(), OBSERVED: _observed(job)} == stored


def _plan_snapshot(
    job: JobRow, watches: list[WatchRecord], fetched: JobSnapshot, ctx: PlanContext
) -> JobWrite:
    old: JobSnapshot | None
    unchanged = _as_stored(job, fetched)
    if unchanged:
        old, new, since_last = fetched, fetched, []
    else:
        old = JobSnapshot.from_dict(job.snapshot) if job.snapshot else None
        new = carry_over(old, fetched)
        since_last = diff(old, new)
    observed = count_changes(_observed(job), since_last)
    writer = _Writer(ctx, new, observed)
    changes = []
    for w in _oldest_first(watches):
        # A watch's first poll is compared with an empty job, so a late watch learns everything.
        found = since_last if w.first_polled_at is not None else diff(None, new)
        for offset, change in enumerate(found, start=1):
            writer.add(w, w.last_sequence + offset, change.type, change=change)
        status = "completed" if new.is_final else "active"
        watch_change = WatchChange(
            w.id,
            w.last_sequence + len(found),
            status,
            w.first_polled_at or ctx.now,
            None,
            None,
            _counted(w, status, new),
        )
        if not _same(w, watch_change):  # most polls: the watch stays as stored, unwritten
            changes.append(watch_change)
    changed = bool(since_last) or old is None
    base = base_interval(new.status, ctx)
    interval = (
        base if changed else min(max(job.interval_s * STRETCH, base), ctx.polling.max_interval_s)
    )
    keep_polling = not new.is_final and bool(watches)
    update = _job_update(
        job,
        # The stored dict itself when nothing changed: the store then leaves the column alone.
        snapshot=job.snapshot if unchanged else {**new.to_dict(), OBSERVED: observed},
        status=new.status,
        final=new.is_final,
        next_poll_at=_jittered(interval, ctx) if keep_polling else None,
        interval_s=interval,
        last_polled_at=ctx.now,
        last_changed_at=ctx.now if changed else job.last_changed_at,
        not_found_count=0,
        first_not_found_at=None,
        error_count=0,
    )
    return JobWrite(job=update, events=writer.events, deliveries=writer.deliveries, watches=changes)
