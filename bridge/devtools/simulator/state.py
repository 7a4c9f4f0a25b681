"""The simulator's state: jobs, scripted responses, per-key usage, and its Python control API."""

from __future__ import annotations

import copy
import threading
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bridge.devtools.simulator.creation import JobRequest
from bridge.devtools.simulator.limits import KeyUsage, creation_refusal
from bridge.devtools.simulator.listing import page_of
from bridge.devtools.simulator.progress import SimJob, canonical_uuid, derive_uuid, render_job
from bridge.devtools.simulator.refusal import REUSED, Refusal
from bridge.devtools.simulator.scripts import Scripts, check_script
from bridge.devtools.simulator.settings import SimulatorSettings
from bridge.devtools.simulator.webhooks import Webhook, WebhookBook

_TICK = timedelta(microseconds=1)


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
            self._scripts = Scripts()
            self._idempotency: dict[tuple[str, str], tuple[str, str]] = {}  # -> job, fingerprint
            self._webhooks = WebhookBook(seed=self.settings.seed)
            self._webhook_results: Counter[str] = Counter()
            self._signalled: set[str] = set()  # jobs told something since their last poll
            self._with_webhooks: dict[str, None] = {}  # in creation order; few jobs have one
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
        webhook_url: str | None = None,
    ) -> str:
        """Create a job for `api_key` directly, bypassing creation limits; return its id."""
        if api_key not in self.settings.keys:
            raise ValueError("api_key is not one of the simulator's keys")
        if total_items < 1:
            raise ValueError("total_items must be at least 1")
        if external_ids is not None and len(external_ids) != total_items:
            raise ValueError("external_ids must have total_items entries")
        if job_id is not None:
            job_id = canonical_uuid(job_id)
        with self._lock:
            if job_id in self._jobs:
                raise ValueError("job_id already exists")
            ids = external_ids or [None] * total_items
            return self._add_job(api_key, ids, job_id=job_id, webhook_url=webhook_url).id

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
        check_script(responses)
        with self._lock:
            if job_id is not None:
                self._scripts.for_job(job_id, responses)
            elif api_key in self.settings.keys:
                self._scripts.for_key(api_key, responses)
            else:
                raise ValueError("script needs a job_id or one of the simulator's keys")

    def stats(self) -> dict[str, Any]:
        """Return polls per key (timestamps, counts), GETs per job and webhooks sent (with the
        polls that came after one, before any other poll of that job), JSON-ready."""
        with self._lock:
            keys = {key: usage.stats() for key, usage in self._usage.items()}
            job_ids = sorted(set(self._jobs) | set(self._gets) | set(self._gets_limited))
            jobs = {
                job_id: {"gets": self._gets[job_id], "rate_limited": self._gets_limited[job_id]}
                for job_id in job_ids
            }
            webhooks = {"delivered": 0, "failed": 0, "polls_after": 0, **self._webhook_results}
            return {"keys": keys, "jobs": jobs, "webhooks": webhooks}

    def peek(self, job_id: str) -> dict[str, Any]:
        """Return the job's current body without counting a poll (KeyError when unknown)."""
        with self._lock:
            return copy.deepcopy(self._render(self._jobs[job_id]))

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
                if job_id in self._signalled:
                    self._signalled.discard(job_id)
                    self._webhook_results["polls_after"] += 1
            return None

    def next_script(self, api_key: str, job_id: str) -> dict[str, Any] | None:
        """Pop the next scripted response for this GET: the job's own first, then the key's."""
        with self._lock:
            return self._scripts.next(api_key=api_key, job_id=job_id)

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
            return self._render(job)

    def list_jobs(
        self, api_key: str, *, limit: int, cursor: datetime | None, status: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of the key's job summaries, newest first, and the next cursor."""
        with self._lock:
            return page_of(
                (j for j in self._jobs.values() if j.api_key == api_key),
                settings=self.settings,
                now=self.now(),
                limit=limit,
                cursor=cursor,
                status=status,
            )

    def submit(
        self, api_key: str, *, idempotency_key: str, request: JobRequest
    ) -> tuple[dict[str, Any], bool]:
        """Create a job as POST does (limits, idempotency): (its body, whether it is new), or raise
        Refusal."""
        with self._lock:
            known = self._idempotency.get((api_key, idempotency_key))
            if known is not None:
                if known[1] != request.fingerprint:
                    raise Refusal(409, "idempotency_conflict", REUSED)
                return self._render(self._jobs[known[0]]), False
            now, usage = self.now(), self._usage[api_key]
            images = len(request.external_ids)
            if self.settings.enforce_limits:
                refusal = creation_refusal(
                    api_key,
                    jobs=list(self._jobs.values()),
                    usage=usage,
                    settings=self.settings,
                    images=images,
                    now=now,
                )
                if refusal is not None:
                    raise refusal
            usage.record_creation(now, images=images)
            job = self._add_job(
                api_key, list(request.external_ids), job_id=None, webhook_url=request.webhook_url
            )
            self._idempotency[(api_key, idempotency_key)] = (job.id, request.fingerprint)
            return self._render(job), True

    def remaining_paid_credits(self, api_key: str) -> int:
        """The key's paid credits left, as the create response reports them."""
        with self._lock:
            sandbox = api_key.startswith("aigen_test_")
            return self._usage[api_key].remaining_paid_credits(sandbox=sandbox)

    def due_webhooks(self) -> list[Webhook]:
        """The signed webhooks jobs owe since last asked, in order; each is handed out once."""
        with self._lock:
            now = self.now()
            jobs = [self._jobs[job_id] for job_id in self._with_webhooks]
            return [w for job in jobs for w in self._webhooks.due(job, self._render(job), now=now)]

    def record_webhook(self, job_id: str, *, delivered: bool) -> None:
        """Count one webhook sent; the job's next poll counts as one that followed a webhook."""
        with self._lock:
            self._webhook_results["delivered" if delivered else "failed"] += 1
            if delivered:
                self._signalled.add(job_id)

    # -- internals ---------------------------------------------------------------------------

    def _add_job(
        self,
        api_key: str,
        external_ids: list[str | None],
        *,
        job_id: str | None,
        webhook_url: str | None = None,
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
            webhook_url=webhook_url,
        )
        self._jobs[job_id] = job
        if webhook_url is not None:
            self._with_webhooks[job_id] = None
            self._webhooks.start(job_id, self._render(job))
        return job

    def _render(self, job: SimJob) -> dict[str, Any]:
        return render_job(job, now=self.now(), settings=self.settings)

    def _next_listed(self) -> datetime:
        # Jobs made at the same clock instant still get distinct, ordered cursors.
        now = self.now()
        if self._last_listed is not None and now <= self._last_listed:
            now = self._last_listed + _TICK
        self._last_listed = now
        return now

    def _freeze(self, job_id: str, job: dict[str, Any]) -> None:
        self._jobs[job_id] = replace(self._jobs[job_id], frozen=copy.deepcopy(job))
