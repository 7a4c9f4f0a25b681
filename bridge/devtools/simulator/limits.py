"""Per-key usage over a rolling hour: polls, creations and images, and the headers they yield."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bridge.devtools.simulator.progress import (
    ACTIVE,
    SimJob,
    finishes_at,
    format_time,
    render_job,
)
from bridge.devtools.simulator.refusal import BUSY_ACCOUNT, BUSY_KEY, TOO_MANY, Refusal
from bridge.devtools.simulator.settings import KeyLimits, SimulatorSettings

HOUR = timedelta(hours=1)
PAID_CREDITS = 1000  # what every simulated account starts with; one credit per image


def seconds_until(moment: datetime, now: datetime) -> int:
    """Return whole seconds from `now` to `moment`, at least 1 (a Retry-After value)."""
    return max(1, math.ceil((moment - now).total_seconds()))


class KeyUsage:
    """What one API key spent in the last hour, and everything it spent for the stats."""

    def __init__(self, limits: KeyLimits) -> None:
        self.limits = limits
        self.window: deque[datetime] = deque()  # counted polls in the rolling hour
        self.polls: list[datetime] = []  # every counted poll, for stats
        self.rate_limited = 0
        self.creations: deque[tuple[datetime, int]] = deque()  # (when, images) in the hour
        self.jobs_created = 0
        self.images_created = 0

    def _prune(self, now: datetime) -> None:
        while self.window and self.window[0] <= now - HOUR:
            self.window.popleft()
        while self.creations and self.creations[0][0] <= now - HOUR:
            self.creations.popleft()

    def poll_retry_after(self, now: datetime) -> int | None:
        """Return the Retry-After seconds when one more poll would exceed the limit, else None."""
        self._prune(now)
        if len(self.window) < self.limits.polls_per_hour:
            return None
        return seconds_until(self.window[0] + HOUR, now)

    def record_poll(self, now: datetime) -> None:
        """Count one poll at `now`."""
        self.window.append(now)
        self.polls.append(now)

    def headers(self, now: datetime) -> dict[str, str]:
        """Return the X-RateLimit-* headers as of `now`."""
        self._prune(now)
        reset = self.window[0] + HOUR if self.window else now
        remaining = max(0, self.limits.polls_per_hour - len(self.window))
        return {
            "X-RateLimit-Limit": str(self.limits.polls_per_hour),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(math.ceil(reset.timestamp())),
        }

    def creation_retry_after(self, now: datetime, *, images: int) -> int | None:
        """Return the Retry-After seconds when creating a job of `images` breaks an hourly limit."""
        self._prune(now)
        waits: list[int] = []
        if len(self.creations) >= self.limits.creations_per_hour:
            oldest = self.creations[len(self.creations) - self.limits.creations_per_hour][0]
            waits.append(seconds_until(oldest + HOUR, now))
        used = sum(n for _, n in self.creations)
        if used + images > self.limits.images_per_hour:
            waits.append(
                self._images_free_in(now, need=used + images - self.limits.images_per_hour)
            )
        return max(waits) if waits else None

    def _images_free_in(self, now: datetime, *, need: int) -> int:
        freed = 0
        for when, count in self.creations:
            freed += count
            if freed >= need:
                return seconds_until(when + HOUR, now)
        return int(HOUR.total_seconds())  # bigger than the hourly allowance: never fits

    def stats(self) -> dict[str, Any]:
        """What the key spent, JSON-ready: every poll's time, 429s and jobs created."""
        return {
            "poll_count": len(self.polls),
            "polls": [format_time(t) for t in self.polls],
            "rate_limited": self.rate_limited,
            "jobs_created": self.jobs_created,
        }

    def remaining_paid_credits(self, *, sandbox: bool) -> int:
        """Paid credits left: live keys spend one per image created, sandbox keys never spend."""
        return PAID_CREDITS if sandbox else max(0, PAID_CREDITS - self.images_created)

    def record_creation(self, now: datetime, *, images: int) -> None:
        """Count one job of `images` created at `now`."""
        self.creations.append((now, images))
        self.jobs_created += 1
        self.images_created += images


def creation_refusal(
    api_key: str,
    *,
    jobs: Sequence[SimJob],
    usage: KeyUsage,
    settings: SimulatorSettings,
    images: int,
    now: datetime,
) -> Refusal | None:
    """The 429 the upstream answers a creation of `images` by `api_key` now, or None."""

    def active(keys: set[str] | list[str]) -> list[SimJob]:
        return [
            j
            for j in jobs
            if j.api_key in keys
            and render_job(j, now=now, settings=settings).get("status") in ACTIVE
        ]

    def free_in(busy: list[SimJob]) -> int:
        ends = [finishes_at(j, settings) for j in busy if j.frozen is None]
        return seconds_until(min(ends), now) if ends else 60

    mine = active({api_key})
    if len(mine) >= settings.keys[api_key].max_active_jobs:
        return Refusal(429, "concurrency_limit", BUSY_KEY, retry_after=free_in(mine))
    for keys in settings.accounts.values():
        if api_key not in keys:
            continue
        shared = active(keys)
        if len(shared) >= settings.max_active_jobs_per_account:
            return Refusal(429, "concurrency_limit", BUSY_ACCOUNT, retry_after=free_in(shared))
    retry = usage.creation_retry_after(now, images=images)
    return None if retry is None else Refusal(429, "rate_limited", TOO_MANY, retry_after=retry)
