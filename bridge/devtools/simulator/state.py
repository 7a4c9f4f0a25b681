"""The simulator's state: jobs, scripted responses, per-key usage, and its Python control API."""

from __future__ import annotations

import copy
import threading
import uuid
from collections import Counter, deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bridge.devtools.simulator.limits import KeyUsage, seconds_until
from bridge.devtools.simulator.progress import (
    ACTIVE,
    SimJob,
    derive_uuid,
    finishes_at,
    format_time,
    render_job,
    summary_of,
)
from bridge.devtools.simulator.refusal import BUSY_ACCOUNT, BUSY_KEY, REUSED, TOO_MANY, Refusal
from bridge.devtools.simulator.settings import SimulatorSettings

SCRIPT_FIELDS = frozenset({"status", "retry_after", "garbage", "delay_s", "job"})
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Image:
    """One image of a creation request."""

    url: str
    external_id: str | None = None


class Simulator:
    """Holds every simulated job and key; the HTTP app and tests both drive it (thread-safe)."""

    def __init__(self, settings: SimulatorSettings | None = None) -> None:
        self.settings = settings or SimulatorSettings()
        self._lock = threading.RLock()
        self.reset()

    def now(self) -> datetime:
        """Return the injected clock's time."""
        return self.settings.now()

    def reset(self) -> None:
        """Forget every job, script, usage record and idempotency key."""
        with self._lock:
            self._jobs: dict[str, SimJob] = {}
            self._usage = {key: KeyUsage(lim) for key, lim in self.settings.keys.items()}
            self._job_scripts: dict[str, deque[dict[str, Any]]] = {}
            self._key_scripts: dict[str, deque[dict[str, Any]]] = {}
            self._idempotency: dict[tuple[str, str], tuple[str, list[Image]]] = {}
            self._gets: Counter[str] = Counter()
            self._gets_limited: Counter[str] = Counter()
            self._job_count = 0
            self._request_count = 0
            self._last_listed: datetime | None = None

    # -- control API -------------------------------------------------------------------------

    def create_job(
        self,
        api_key: str,
        *,
        total_items: int,
        external_ids: list[str | None] | None = None,
        job_id: str | None = None,
    ) -> str:
        """Create a job for `api_key` directly, bypassing creation limits; return its id."""
        if api_key not in self.settings.keys:
            raise ValueError("api_key is not one of the simulator's keys")
        if total_items < 1:
            raise ValueError("total_items must be at least 1")
        if external_ids is not None and len(external_ids) != total_items:
            raise ValueError("external_ids must have total_items entries")
        if job_id is not None:
            job_id = _canonical_uuid(job_id)
        with self._lock:
            if job_id in self._jobs:
                raise ValueError("job_id already exists")
            ids = external_ids or [None] * total_items
            return self._add_job(api_key, ids, job_id=job_id).id

    def set_job(self, job_id: str, job: dict[str, Any]) -> None:
        """Freeze `job_id` at exactly this body: it stops progressing and GET returns it."""
        with self._lock:
            if job_id not in self._jobs:
                raise KeyError(job_id)
            self._freeze(job_id, job)

    def script(
        self, job_id: str | None, responses: list[dict[str, Any]], api_key: str | None = None
    ) -> None:
        """Queue `responses` for the next GETs of `job_id` (or, with job_id None, any job of
        `api_key`); each is {"status"}, {"status": 429, "retry_after"}, {"garbage": true},
        {"delay_s"} or {"job"}, and delay_s combines with any other."""
        for response in responses:
            unknown = set(response) - SCRIPT_FIELDS
            if unknown:
                raise ValueError(f"unknown script fields: {sorted(unknown)}")
        with self._lock:
            if job_id is not None:
                queue = self._job_scripts.setdefault(job_id, deque())
            elif api_key in self.settings.keys:
                queue = self._key_scripts.setdefault(api_key, deque())
            else:
                raise ValueError("script needs a job_id or one of the simulator's keys")
            queue.extend(copy.deepcopy(responses))

    def stats(self) -> dict[str, Any]:
        """Return polls per key (timestamps, counts) and GETs per job, JSON-ready."""
        with self._lock:
            keys = {
                key: {
                    "poll_count": len(usage.polls),
                    "polls": [format_time(t) for t in usage.polls],
                    "rate_limited": usage.rate_limited,
                    "jobs_created": usage.jobs_created,
                }
                for key, usage in self._usage.items()
            }
            job_ids = sorted(set(self._jobs) | set(self._gets) | set(self._gets_limited))
            jobs = {
                job_id: {"gets": self._gets[job_id], "rate_limited": self._gets_limited[job_id]}
                for job_id in job_ids
            }
            return {"keys": keys, "jobs": jobs}

    def peek(self, job_id: str) -> dict[str, Any]:
        """Return the job's current body without counting a poll (KeyError when unknown)."""
        with self._lock:
            return copy.deepcopy(
                render_job(self._jobs[job_id], now=self.now(), settings=self.settings)
            )

    # -- used by the HTTP layer --------------------------------------------------------------

    def request_id(self, given: str | None) -> str:
        """Return the caller's request id when usable, else a new one."""
        if given and len(given) <= 160:
            return given
        with self._lock:
            self._request_count += 1
            return f"req_sim_{self._request_count:08d}"

    def knows(self, api_key: str | None) -> bool:
        """True when `api_key` is one of the simulator's keys."""
        return api_key is not None and api_key in self.settings.keys

    def rate_headers(self, api_key: str) -> dict[str, str]:
        """Return the X-RateLimit-* headers for `api_key` now."""
        with self._lock:
            return self._usage[api_key].headers(self.now())

    def admit_poll(self, api_key: str, *, job_id: str | None) -> int | None:
        """Count a GET as a poll and return None, or return Retry-After when over the limit."""
        with self._lock:
            usage, now = self._usage[api_key], self.now()
            retry = usage.poll_retry_after(now) if self.settings.enforce_limits else None
            if retry is not None:
                usage.rate_limited += 1
                if job_id is not None:
                    self._gets_limited[job_id] += 1
                return retry
            usage.record_poll(now)
            if job_id is not None:
                self._gets[job_id] += 1
            return None

    def next_script(self, api_key: str, job_id: str) -> dict[str, Any] | None:
        """Pop the next scripted response for this GET: the job's own first, then the key's."""
        with self._lock:
            for queue in (self._job_scripts.get(job_id), self._key_scripts.get(api_key)):
                if queue:
                    return queue.popleft()
            return None

    def freeze_scripted(self, api_key: str, job_id: str, job: dict[str, Any]) -> None:
        """Freeze a job at a scripted body, creating it for `api_key` when it does not exist."""
        with self._lock:
            if job_id not in self._jobs:
                self._jobs[job_id] = SimJob(
                    id=job_id,
                    api_key=api_key,
                    created_at=self.now(),
                    listed_at=self._next_listed(),
                    items=(),
                )
            self._freeze(job_id, job)

    def job_for(self, api_key: str, job_id: str) -> dict[str, Any] | None:
        """Return the job's body when it exists and belongs to `api_key`, else None."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.api_key != api_key:
                return None
            return render_job(job, now=self.now(), settings=self.settings)

    def list_jobs(
        self, api_key: str, *, limit: int, cursor: datetime | None, status: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of the key's job summaries, newest first, and the next cursor."""
        with self._lock:
            now = self.now()
            rows = sorted(
                (j for j in self._jobs.values() if j.api_key == api_key),
                key=lambda j: j.listed_at,
                reverse=True,
            )
            page: list[tuple[SimJob, dict[str, Any]]] = []
            for job in rows:
                if cursor is not None and job.listed_at >= cursor:
                    continue
                summary = summary_of(job, render_job(job, now=now, settings=self.settings))
                if status is None or summary.get("status") == status:
                    page.append((job, summary))
                if len(page) > limit:
                    break
            more = len(page) > limit
            next_cursor = format_time(page[limit - 1][0].listed_at) if more else None
            return [summary for _, summary in page[:limit]], next_cursor

    def submit(self, api_key: str, *, idempotency_key: str, images: list[Image]) -> dict[str, Any]:
        """Create a job as POST does (limits, idempotency) and return its body, or raise Refusal."""
        with self._lock:
            known = self._idempotency.get((api_key, idempotency_key))
            if known is not None:
                if known[1] != images:
                    raise Refusal(409, "idempotency_conflict", REUSED)
                return render_job(self._jobs[known[0]], now=self.now(), settings=self.settings)
            if self.settings.enforce_limits:
                self._check_creation(api_key, images=len(images))
            self._usage[api_key].record_creation(self.now(), images=len(images))
            job = self._add_job(api_key, [i.external_id for i in images], job_id=None)
            self._idempotency[(api_key, idempotency_key)] = (job.id, images)
            return render_job(job, now=self.now(), settings=self.settings)

    # -- internals ---------------------------------------------------------------------------

    def _add_job(
        self, api_key: str, external_ids: list[str | None], *, job_id: str | None
    ) -> SimJob:
        if job_id is None:
            self._job_count += 1
            job_id = derive_uuid(self.settings.seed, "job", self._job_count)
        items = tuple(
            (derive_uuid(self.settings.seed, job_id, index), external_id)
            for index, external_id in enumerate(external_ids)
        )
        job = SimJob(
            id=job_id,
            api_key=api_key,
            created_at=self.now(),
            listed_at=self._next_listed(),
            items=items,
        )
        self._jobs[job_id] = job
        return job

    def _next_listed(self) -> datetime:
        # Jobs made at the same clock instant still get distinct, ordered cursors.
        now = self.now()
        if self._last_listed is not None and now <= self._last_listed:
            now = self._last_listed + _TICK
        self._last_listed = now
        return now

    def _freeze(self, job_id: str, job: dict[str, Any]) -> None:
        self._jobs[job_id] = replace(self._jobs[job_id], frozen=copy.deepcopy(job))

    def _check_creation(self, api_key: str, *, images: int) -> None:
        now = self.now()
        active = [j for j in self._jobs.values() if j.api_key == api_key and self._active(j, now)]
        if len(active) >= self.settings.keys[api_key].max_active_jobs:
            raise Refusal(429, "concurrency_limit", BUSY_KEY, retry_after=self._free_in(active))
        for keys in self.settings.accounts.values():
            if api_key not in keys:
                continue
            shared = [j for j in self._jobs.values() if j.api_key in keys and self._active(j, now)]
            if len(shared) >= self.settings.max_active_jobs_per_account:
                raise Refusal(
                    429, "concurrency_limit", BUSY_ACCOUNT, retry_after=self._free_in(shared)
                )
        retry = self._usage[api_key].creation_retry_after(now, images=images)
        if retry is not None:
            raise Refusal(429, "rate_limited", TOO_MANY, retry_after=retry)

    def _active(self, job: SimJob, now: datetime) -> bool:
        return render_job(job, now=now, settings=self.settings).get("status") in ACTIVE

    def _free_in(self, active: list[SimJob]) -> int:
        ends = [finishes_at(j, self.settings) for j in active if j.frozen is None]
        return seconds_until(min(ends), self.now()) if ends else 60


def _canonical_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("job_id must be a UUID") from None
