"""An import's roll-up (CONTRACT section 7), kept incrementally. Pure: no I/O, no clock.

Each watch of an import remembers what its job last added to the import (`Contribution`); a poll
adds only the difference to the import's `Tally` (`fold`), then `settle` says which import events
that change makes. So a poll of one job costs the same however many jobs the import has, and a
recount from the jobs (`recount`) always gives the same numbers: the property tests check that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bridge.events.snapshot import JobSnapshot
from bridge.events.vocabulary import IMPORT_FINAL

JOB_STATES = ("active", "completed", "partially_completed", "failed", "cancelled")
_STARTED_ITEMS = frozenset({"processing", "completed", "failed"})
_FAILED_ITEMS = frozenset({"failed", "cancelled"})
HOUR = timedelta(hours=1)
MIN_RATE_WINDOW = timedelta(minutes=1)  # a rate over a few seconds would promise the moon


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one job adds to its import: its place in the job counts, its images and credits."""

    state: str = "active"
    total: int = 0
    completed: int = 0
    failed: int = 0  # failed or cancelled images: finished, and not a result
    credits: int = 0
    started: bool = False  # an image of it has started or finished
    seen: bool = False  # polled at least once (or ended): its images are known

    @property
    def finished(self) -> int:
        """Images that will not change any more."""
        return self.completed + self.failed

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, stored on the watch."""
        return {name: getattr(self, name) for name in self.__slots__}

    def cancelled(self) -> Contribution:
        """The same job, cancelled: it counts as ended (and its images as known) from now on."""
        return replace(self, state="cancelled", seen=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Contribution | None:
        """Rebuild a stored contribution; None when the watch was never counted."""
        return None if data is None else cls(**data)


def contribution(watch_status: str, snapshot: JobSnapshot | None) -> Contribution:
    """What a watch's job adds to its import, from the watch's status and the job as last polled."""
    if snapshot is None:
        state = "failed" if watch_status in ("failed", "expired") else watch_status
        state = "active" if state == "completed" else state
        return Contribution(state=state, seen=state != "active")
    items = snapshot.items
    completed = sum(1 for i in items if i.status == "completed")
    failed = sum(1 for i in items if i.status in _FAILED_ITEMS)
    if watch_status == "completed":
        state = snapshot.status if snapshot.status in IMPORT_FINAL else "completed"
    elif watch_status in ("failed", "expired"):
        state = "failed"
    else:
        state = watch_status  # active or cancelled
    return Contribution(
        state=state,
        total=max(snapshot.total_items, len(items)),
        completed=completed,
        failed=failed,
        credits=int(snapshot.credits_used or 0),
        started=snapshot.status == "processing" or any(i.status in _STARTED_ITEMS for i in items),
        seen=True,
    )


def _zero_jobs() -> dict[str, int]:
    return dict.fromkeys(("total", *JOB_STATES), 0)


@dataclass(frozen=True, slots=True)
class Tally:
    """An import's rolled-up state: what the `imports` row holds besides its identity."""

    status: str = "open"
    closed: bool = False
    expected_jobs: int | None = None
    jobs: dict[str, int] = field(default_factory=_zero_jobs)
    jobs_seen: int = 0  # jobs whose images are known: progress waits until every job's are
    images_total: int = 0
    images_completed: int = 0
    images_failed: int = 0
    credits_used: int = 0
    started: bool = False
    progress_tenths: int = 0
    stalled: bool = False
    started_at: datetime | None = None
    last_finished_at: datetime | None = None
    finished_by_minute: dict[str, int] = field(default_factory=dict)
    ended_at: datetime | None = None

    @property
    def ended(self) -> bool:
        """The import has its final status; nothing changes it any more."""
        return self.status in IMPORT_FINAL

    @property
    def images_finished(self) -> int:
        """Images completed or failed."""
        return self.images_completed + self.images_failed


def _minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


def fold(
    tally: Tally,
    old: Contribution | None,
    new: Contribution,
    *,
    now: datetime,
    timed: bool = True,
) -> Tally:
    """Add the difference between a job's old and new contribution (`old` None: a new job).

    `timed=False`: images that finished before the import knew the job (a job added late) are
    counted, but not as finishing now, so they neither make the rate nor end a stall.
    """
    before = old or Contribution(state=new.state)
    jobs = dict(tally.jobs)
    if old is None:
        jobs["total"] += 1
        jobs[new.state] += 1
    elif old.state != new.state:
        jobs[old.state] -= 1
        jobs[new.state] += 1
    finished = new.finished - before.finished
    by_minute = dict(tally.finished_by_minute)
    last_finished_at = tally.last_finished_at
    if finished > 0 and timed:
        key = str(_minute(now))
        by_minute[key] = by_minute.get(key, 0) + finished
        last_finished_at = now
    return replace(
        tally,
        jobs=jobs,
        jobs_seen=tally.jobs_seen + int(new.seen) - int(before.seen),
        images_total=tally.images_total + new.total - before.total,
        images_completed=tally.images_completed + new.completed - before.completed,
        images_failed=tally.images_failed + new.failed - before.failed,
        credits_used=tally.credits_used + new.credits - before.credits,
        started=tally.started or new.started,
        last_finished_at=last_finished_at,
        finished_by_minute=_recent(by_minute, now),
    )


def _recent(by_minute: dict[str, int], now: datetime) -> dict[str, int]:
    """Only the last hour's minutes: the rate looks no further back."""
    oldest = _minute(now - HOUR)
    return {k: v for k, v in by_minute.items() if int(k) >= oldest}


def final_status(tally: Tally) -> str:
    """How a finished import ended: every job cancelled, or every image completed, none, or some."""
    if tally.jobs["cancelled"] == tally.jobs["total"]:
        return "cancelled"
    if tally.images_completed == 0:
        return "failed"
    if tally.images_completed == tally.images_total:
        return "completed"
    return "partially_completed"


def settle(tally: Tally, *, now: datetime, finished_before: int) -> tuple[Tally, list[str]]:
    """The import events a folded tally makes, in order, and the tally with its status moved on.

    `finished_before` is the finished images before this change: an image finishing ends a stall.
    """
    if tally.ended:
        return tally, []
    out: list[str] = []
    if tally.status == "open" and (tally.started or tally.images_finished > 0):
        tally = replace(tally, status="running", started_at=tally.started_at or now)
        out.append("import.started")
    if tally.stalled and tally.images_finished > finished_before:
        tally = replace(tally, stalled=False)
        out.append("import.resumed")
    total = tally.images_total
    tenths = min(9, math.floor(10 * tally.images_finished / total)) if total else 0
    # A share of the images known so far would be a false promise while jobs are still unpolled
    # (a catalog's first polls take hours at 120 an hour): progress waits until all are known.
    if tenths > tally.progress_tenths and tally.jobs_seen >= tally.jobs["total"]:
        tally = replace(tally, progress_tenths=tenths)
        out.append("import.progress")
    if tally.closed and tally.jobs["active"] == 0 and tally.jobs["total"] > 0:
        status = final_status(tally)
        tally = replace(tally, status=status, ended_at=now, stalled=False)
        out.append(f"import.{status}")
    return tally, out


def close(tally: Tally, *, now: datetime) -> tuple[Tally, list[str]]:
    """No more jobs will come: the import ends as soon as its jobs have (now, if they have)."""
    if tally.ended or tally.closed:
        return tally, []
    return settle(replace(tally, closed=True), now=now, finished_before=tally.images_finished)


def cancel(tally: Tally, *, now: datetime) -> tuple[Tally, list[str]]:
    """The import is cancelled (its watches are cancelled by the caller); ended imports stay."""
    if tally.ended:
        return tally, []
    return replace(tally, status="cancelled", closed=True, ended_at=now, stalled=False), [
        "import.cancelled"
    ]


def stall(tally: Tally, *, now: datetime, stall_after: timedelta) -> tuple[Tally, list[str]]:
    """`import.stalled` when a running import with active jobs has finished no image for a while."""
    if tally.status != "running" or tally.stalled or tally.jobs["active"] == 0:
        return tally, []
    since = tally.last_finished_at or tally.started_at or now
    if now - since < stall_after:
        return tally, []
    return replace(tally, stalled=True), ["import.stalled"]


def rate_per_hour(tally: Tally, *, now: datetime) -> float | None:
    """Images finished per hour over the last hour (since the start, when the import is younger)."""
    if tally.started_at is None:
        return None
    start = max(now - HOUR, tally.started_at)
    window = max(now - start, MIN_RATE_WINDOW)
    oldest = _minute(start)
    done = sum(v for k, v in tally.finished_by_minute.items() if int(k) >= oldest)
    return round(done / (window.total_seconds() / 3600), 2)


def eta(tally: Tally, *, now: datetime) -> datetime | None:
    """When the pending images will have finished at the current rate; None before one finishes."""
    if tally.ended or tally.last_finished_at is None:
        return None
    pending = tally.images_total - tally.images_finished
    if pending <= 0:
        return now
    rate = rate_per_hour(tally, now=now)
    if not rate:
        return None
    return now + timedelta(hours=pending / rate)


def recount(contributions: Iterable[Contribution]) -> dict[str, Any]:
    """The counts summed from every job's contribution: what `fold` must always agree with."""
    jobs = _zero_jobs()
    images = {"total": 0, "completed": 0, "failed": 0}
    credits = seen = 0
    for c in contributions:
        seen += c.seen
        jobs["total"] += 1
        jobs[c.state] += 1
        images["total"] += c.total
        images["completed"] += c.completed
        images["failed"] += c.failed
        credits += c.credits
    return {"jobs": jobs, "images": images, "credits_used": credits, "jobs_seen": seen}
