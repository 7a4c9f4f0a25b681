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
from bridge.events.diff import Change, carry_over, diff
from bridge.events.payloads import WatchRef, event_payload
from bridge.events.routing import Router, WatchRoute
from bridge.events.snapshot import JobSnapshot
from bridge.ids import new_id
from bridge.polling.outcomes import NotFound, Ok, Outcome, RateLimited, Unauthorized
from bridge.store.records import WatchRecord
from bridge.store.rows import JobRow, JobUpdate, JobWrite, NewDelivery, NewEvent, WatchChange

NOT_FOUND_POLLS = 3  # a 404 seen this many times ...
NOT_FOUND_SPAN = timedelta(seconds=30)  # ... over at least this long fails the watch
NOT_FOUND_RETRY_S = 15.0
STRETCH = 1.5  # an unchanged job is polled 1.5 times less often each time, up to max_interval_s
JITTER = 0.1
MAX_BACKOFF_DOUBLINGS = 16  # 2**errors beyond this only overflows; max_interval_s caps it anyway  # intervals vary by ±10% so jobs registered together drift apart
PROCESSING_FAILURES = 3  # polls in a row whose processing raised end the job's watches

ERRORS = {
    "invalid_api_key": "the upstream rejected the account's API key (HTTP 401)",
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
    """Accumulates one job's events, deliveries and watch changes with gap-free sequences."""

    def __init__(self, ctx: PlanContext, job: JobSnapshot | None) -> None:
        self.ctx, self.job = ctx, job
        self.events: list[NewEvent] = []
        self.deliveries: list[NewDelivery] = []

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
            NewEvent(event_id, watch.id, sequence, event_type, payload, self.ctx.now)
        )
        route = WatchRoute(watch.client, watch.account, watch.webhook_url, watch.events)
        for destination in self.ctx.router.destinations(event_type, route):
            self.deliveries.append(
                NewDelivery(
                    self.ctx.new_id("dlv"), event_id, watch.id, sequence, destination, self.ctx.now
                )
            )


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
    writer = _Writer(ctx, snapshot)
    changes = []
    status = "expired" if reason == "watch_expired" else "failed"
    for w in watches:
        if only_expired and w.expires_at > ctx.now:
            continue
        writer.add(w, w.last_sequence + 1, f"watch.{status}", error_code=reason)
        changes.append(
            WatchChange(
                w.id, w.last_sequence + 1, status, w.first_polled_at, reason, ERRORS[reason]
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
        ended = plan_end(job, watches, ctx, reason="invalid_api_key")
        return replace(ended, job=_job_update(job, next_poll_at=None, last_polled_at=ctx.now))
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


def _plan_snapshot(
    job: JobRow, watches: list[WatchRecord], fetched: JobSnapshot, ctx: PlanContext
) -> JobWrite:
    old = JobSnapshot.from_dict(job.snapshot) if job.snapshot else None
    new = carry_over(old, fetched)
    since_last = diff(old, new)
    writer = _Writer(ctx, new)
    changes = []
    for w in watches:
        # A watch's first poll is compared with an empty job, so a late watch learns everything.
        found = since_last if w.first_polled_at is not None else diff(None, new)
        for offset, change in enumerate(found, start=1):
            writer.add(w, w.last_sequence + offset, change.type, change=change)
        changes.append(
            WatchChange(
                w.id,
                w.last_sequence + len(found),
                "completed" if new.is_final else "active",
                w.first_polled_at or ctx.now,
                None,
                None,
            )
        )
    changed = bool(since_last) or old is None
    base = base_interval(new.status, ctx)
    interval = (
        base if changed else min(max(job.interval_s * STRETCH, base), ctx.polling.max_interval_s)
    )
    keep_polling = not new.is_final and bool(watches)
    update = _job_update(
        job,
        snapshot=new.to_dict(),
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
