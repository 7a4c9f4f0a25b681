"""Poller.poll_due(now): claim due jobs within budget, poll each once, write what changed durably."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from random import Random

from bridge.clock import Clock
from bridge.config import AccountConfig, PollingConfig
from bridge.events.import_events import ImportEventPlanner
from bridge.events.routing import Router
from bridge.ops.metrics import Metrics
from bridge.polling import budget
from bridge.polling.apikey import key_refused, key_verdict, observe_key
from bridge.polling.budget import BudgetState, Limits, observe
from bridge.polling.outcomes import Ok, Outcome, RateLimited
from bridge.polling.planning import (
    PROCESSING_FAILURES,
    PlanContext,
    plan_end,
    plan_failure,
    plan_poll,
)
from bridge.polling.upstream import UpstreamClient
from bridge.store import Store
from bridge.store.records import WatchRecord
from bridge.store.rows import Claim, JobRow, JobWrite

log = logging.getLogger(__name__)

Key = tuple[str, str]
# Batches a poll_due overlaps on PostgreSQL: 1,250 polls/s one at a time, 1,330-1,620 so.
OVERLAP = 8
PollPlanner = Callable[[JobRow, list[WatchRecord], Outcome, PlanContext], JobWrite]


class Poller:
    """Polls upstream jobs for every watch, one poll per job however many watches it has."""

    def __init__(
        self,
        *,
        store: Store,
        upstream: Mapping[str, UpstreamClient],
        accounts: Mapping[str, AccountConfig],
        polling: PollingConfig,
        router: Router,
        timeout_s: float,
        metrics: Metrics,
        now: Clock,
        owner: str,
        rng: Random | None = None,
        batch: int = 200,
        rounds: int | None = None,
        max_in_flight: int = 100,
        on_events: Callable[[], None] | None = None,
        plan: PollPlanner = plan_poll,
    ) -> None:
        self.store = store
        self.upstream = upstream
        self.polling = polling
        self.router = router
        self.imports = ImportEventPlanner(router)  # events of the imports its polls move
        self.metrics = metrics
        self.now = now
        self.owner = owner
        self.rng = rng or Random()
        self.batch = batch
        # Batches one poll_due may overlap while they come full. SQLite's work runs on a thread of
        # this process and its one connection takes turns anyway: overlapping only adds GIL
        # contention there (1,440 polls/s alone against 1,330 overlapped, bench/polling.py).
        self.rounds = rounds or (1 if store.jobs.dialect == "sqlite" else OVERLAP)
        self.on_events = on_events  # told when events were committed, so delivery starts at once
        self.plan = plan  # what a poll writes (tests hand in one that fails for some jobs)
        # Matches the shared pool's connection limit, so polls never queue inside the transport.
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self.limits = {
            name: Limits(account.polls_per_hour, account.max_concurrency)
            for name, account in accounts.items()
            if name in upstream
        }
        self._widest = max((lim.max_concurrency for lim in self.limits.values()), default=1)
        # A poll's lease outlives its timeout, so a live replica never loses a job mid-poll.
        self.lease = timedelta(seconds=timeout_s * 2 + 5)

    def _context(self, now: datetime | None = None) -> PlanContext:
        return PlanContext(
            polling=self.polling, router=self.router, now=now or self.now(), rng=self.rng
        )

    async def start(self) -> None:
        """Create budget rows for the configured accounts."""
        await self.store.jobs.ensure_budgets(list(self.limits), now=self.now())

    async def poll_due(self, now: datetime | None = None) -> int:
        """Poll due jobs a batch at a time, up to `rounds` batches while they come full; returns
        how many polls were made.

        The batches overlap: while one batch's polls are in flight the next is claimed, and while
        the next is in flight the first is written, so the database's round trips (and SQLite's
        thread) work beside the polls instead of between them. Each claim is the budget's own
        decision under its row locks, counting the polls still in flight, as a second replica's is.
        """
        first = now or self.now()
        await self.expire_watches(first)
        claims = await self._claim(first)
        polled, rounds = 0, 1
        writing: asyncio.Task[None] | None = None
        claiming: asyncio.Task[list[Claim]] | None = None
        try:
            while claims:
                fetching = asyncio.gather(*(self._fetch(c) for c in claims))
                if len(claims) >= self.batch and rounds < self.rounds:
                    claiming = asyncio.create_task(self._claim(now or self.now()))
                    rounds += 1
                outcomes = await fetching
                if writing is not None:
                    await writing  # one batch written at a time, in order
                by_key = {
                    (c.job.account, c.job.job_id): o for c, o in zip(claims, outcomes, strict=True)
                }
                writing = asyncio.create_task(self._record(by_key))
                polled += len(claims)
                claims, claiming = (await claiming if claiming else []), None
            if writing is not None:
                await writing
        finally:
            for task in (writing, claiming):
                if task is None:
                    continue
                if not task.done():
                    task.cancel()  # on an error only: a claimed batch's leases run out
                elif not task.cancelled():
                    task.exception()  # retrieved: the error that ended the loop is raised
        return polled

    async def _claim(self, now: datetime) -> list[Claim]:
        claims = await self.store.jobs.claim_due(
            now=now,
            owner=self.owner,
            lease=self.lease,
            accounts=self.limits.keys(),
            per_account=self._widest,
            limit=self.batch,
            decide=lambda demand: budget.decide(
                demand, limits=self.limits[demand.account], now=now
            ),
        )
        for claim in claims:
            lag = (now - claim.due_at).total_seconds()
            self.metrics.poll_lag.observe(max(lag, 0.0))
        return claims

    async def _fetch(self, claim: Claim) -> Outcome:
        job = claim.job
        async with self._in_flight:
            outcome = await self.upstream[job.account].fetch_job(job.job_id)
        kind = type(outcome).__name__.lower()
        self.metrics.polls.labels(job.account, kind).inc()
        if not isinstance(outcome, Ok):
            log.info(
                "poll did not succeed",
                extra={
                    "account": job.account,
                    "job_id": job.job_id,
                    "outcome": kind,
                    "status_code": outcome.status_code,
                    "upstream_request_id": outcome.request_id,
                },
            )
        return outcome

    async def _record(self, outcomes: dict[Key, Outcome]) -> None:
        ctx = self._context()

        def planner(job: JobRow, watches: list[WatchRecord]) -> JobWrite:
            return self.plan(job, watches, outcomes[(job.account, job.job_id)], ctx)

        writes = await self.store.jobs.apply_plans(
            list(outcomes),
            planner,
            now=ctx.now,
            owner=self.owner,
            on_error=partial(_failed, ctx=ctx),
            imports=self.imports,
        )
        self._committed(writes)
        verdicts = _key_verdicts(outcomes)
        rows = await self._observe_budgets(outcomes, verdicts, ctx.now)
        refused = [a for a, ok in verdicts.items() if ok is False and a in rows]
        for account in refused:
            await self._refused(account, rows[account], ctx.now)

    def _committed(self, writes: list[JobWrite]) -> None:
        for write in writes:
            for event in write.events:
                self.metrics.events.labels(event.type).inc()
        if self.on_events is not None and any(w.deliveries for w in writes):
            self.on_events()

    async def _observe_budgets(
        self, outcomes: dict[Key, Outcome], verdicts: dict[str, bool | None], now: datetime
    ) -> dict[str, BudgetState]:
        latest: dict[str, Outcome] = {}
        for (account, _), outcome in outcomes.items():
            if outcome.rate_limit is None and not isinstance(outcome, RateLimited):
                continue
            # Polls in flight together answer in any order: the fewest remaining is the newest word.
            if account not in latest or _remaining(outcome) < _remaining(latest[account]):
                latest[account] = outcome

        changed = {*latest, *(a for a, v in verdicts.items() if v is not None)}
        changes = {
            a: partial(_fold, latest=latest.get(a), verdict=verdicts.get(a), now=now)
            for a in changed
        }
        rows = await self.store.jobs.update_budgets(changes, now=now)
        for account, outcome in latest.items():
            if outcome.rate_limit is not None and outcome.rate_limit.remaining is not None:
                self.metrics.budget_remaining.labels(account).set(outcome.rate_limit.remaining)
            if isinstance(outcome, RateLimited):
                log.warning(
                    "upstream rate limit: account paused",
                    extra={"account": account, "retry_after_s": outcome.retry_after_s},
                )
        return rows

    async def _refused(self, account: str, row: BudgetState, now: datetime) -> None:
        """A 401: believed once it repeats a minute after the first, else only noted."""
        if not key_refused(row, now=now):
            if row.unauthorized_since == now:
                log.warning(
                    "upstream refused the API key (401); its watches fail if it is refused "
                    "again in a minute",
                    extra={"account": account},
                )
            return
        await self.fail_account(account, since=row.unauthorized_since)
        # The account's watches are over; a watch made later gets its own minute.
        await self.store.jobs.update_budgets(
            {account: lambda state: replace(state, unauthorized_since=None)}, now=now
        )

    async def fail_account(self, account: str, *, since: datetime | None = None) -> None:
        """The API key was refused: fail every active watch of the account, loudly."""
        log.error(
            "upstream refused the API key (401) again: failing every watch of the account; "
            "fix the key",
            extra={"account": account, "refused_since": since.isoformat() if since else None},
        )
        keys = await self.store.jobs.watched_by_account(account)
        ctx = self._context()
        writes = await self.store.jobs.apply_plans(
            keys,
            partial(_end, ctx=ctx, reason="invalid_api_key", only_expired=False),
            now=ctx.now,
            imports=self.imports,
        )
        self._committed(writes)

    async def expire_watches(self, now: datetime) -> None:
        """End watches whose TTL passed with `watch.expired`."""
        keys = await self.store.jobs.with_expired_watches(now=now, limit=self.batch)
        if keys:
            ctx = self._context(now)
            writes = await self.store.jobs.apply_plans(
                keys,
                partial(_end, ctx=ctx, reason="watch_expired", only_expired=True),
                now=now,
                imports=self.imports,
            )
            self._committed(writes)


def _fold(
    state: BudgetState, *, latest: Outcome | None, verdict: bool | None, now: datetime
) -> BudgetState:
    """Fold what a batch said of one account (its newest rate-limit word, its key) into its row."""
    if latest is not None:
        rl = latest.rate_limit
        limited = isinstance(latest, RateLimited)
        state = observe(
            state,
            now=now,
            remaining=rl.remaining if rl else None,
            reset_at=rl.reset_at if rl else None,
            retry_after_s=latest.retry_after_s if isinstance(latest, RateLimited) else None,
            rate_limited=limited,
        )
    if verdict is not None:
        state = observe_key(state, accepted=verdict, now=now)
    return state


def _key_verdicts(outcomes: dict[Key, Outcome]) -> dict[str, bool | None]:
    """Per account, what this batch said of its key (see apikey.key_verdict)."""
    by_account: dict[str, list[Outcome]] = defaultdict(list)
    for (account, _), outcome in outcomes.items():
        by_account[account].append(outcome)
    return {account: key_verdict(found) for account, found in by_account.items()}


def _remaining(outcome: Outcome) -> float:
    if isinstance(outcome, RateLimited):
        return -1.0  # a 429 always wins: it pauses the account
    rl = outcome.rate_limit
    return float(rl.remaining) if rl is not None and rl.remaining is not None else float("inf")


def _failed(job: JobRow, watches: list[WatchRecord], *, ctx: PlanContext) -> JobWrite:
    """Processing this job's poll raised (logged by the store): count it, maybe end its watches."""
    if job.failure_count + 1 >= PROCESSING_FAILURES:
        log.error(
            "a job failed processing polls repeatedly: its watches end with internal_error",
            extra={"account": job.account, "job_id": job.job_id, "watches": len(watches)},
        )
    return plan_failure(job, watches, ctx)


def _end(
    job: JobRow, watches: list[WatchRecord], *, ctx: PlanContext, reason: str, only_expired: bool
) -> JobWrite:
    return plan_end(job, watches, ctx, reason=reason, only_expired=only_expired)
