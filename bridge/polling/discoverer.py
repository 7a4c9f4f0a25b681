"""Discoverer.discover_due(now): take the accounts' due discovery rounds, spend the list requests the
budget allows now, and watch every queued or processing job a page names that discovery never watched."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from functools import partial

from bridge.clock import Clock
from bridge.config import AccountConfig, PollingConfig
from bridge.config.refs import DISCOVERY_CLIENT
from bridge.ops.metrics import Metrics
from bridge.polling.budget import BudgetState, Limits, observe
from bridge.polling.discovery import (
    Round,
    allow_list,
    canonical_job_id,
    discovering_accounts,
    due_accounts,
    jobs_to_watch,
    next_round,
)
from bridge.polling.outcomes import Listed, ListOutcome, RateLimited
from bridge.polling.upstream import LIST_LIMIT, UpstreamClient
from bridge.store import Store

log = logging.getLogger(__name__)


class Discoverer:
    """Lists each discovering account's queued and processing jobs every discover_interval_s and
    watches the new ones (client "discovery"); each list request is a poll of the account's budget."""

    def __init__(
        self,
        *,
        store: Store,
        upstream: Mapping[str, UpstreamClient],
        accounts: Mapping[str, AccountConfig],
        polling: PollingConfig,
        subscribed: Callable[[], Iterable[str]],
        metrics: Metrics,
        now: Clock,
        on_watched: Callable[[], None] | None = None,
        page_size: int = LIST_LIMIT,
    ) -> None:
        self.store = store
        self.upstream = upstream
        self.accounts = {name: a for name, a in accounts.items() if name in upstream}
        self.subscribed = subscribed  # the accounts channels subscribed to, as last read
        self.metrics = metrics
        self.now = now
        self.on_watched = on_watched  # told when watches were made, so their first poll is soon
        self.page_size = page_size  # jobs per list request (the upstream's most by default)
        self.interval = timedelta(seconds=polling.discover_interval_s)
        self.ttl = timedelta(hours=polling.watch_ttl_h)
        self.limits = {
            name: Limits(a.polls_per_hour, a.max_concurrency) for name, a in self.accounts.items()
        }
        self.rounds: dict[str, Round] = {}  # rounds this replica is walking
        self.next_at: dict[str, datetime] = {}  # when each account's next round is due

    def discovers(self, account: str) -> bool:
        """Whether discovery covers the account now (its config, or a channel's subscription)."""
        return account in discovering_accounts(self.accounts, self.subscribed())

    async def discover_due(self, now: datetime | None = None) -> int:
        """Start the rounds that are due and make each round's next list request if the budget
        allows it now; returns how many list requests were made."""
        now = now or self.now()
        active = discovering_accounts(self.accounts, self.subscribed())
        for account in set(self.rounds) - active:  # unsubscribed meanwhile: stop listing it
            del self.rounds[account]
        for account in due_accounts(active, in_round=self.rounds, next_at=self.next_at, now=now):
            taken, self.next_at[account] = await self.store.discovery.take_round(
                account=account, now=now, interval=self.interval
            )
            if taken:
                self.rounds[account] = Round(account)
        made = await asyncio.gather(*(self._step(a, now) for a in sorted(self.rounds)))
        return sum(made)

    async def watch_signalled(self, account: str, job_id: str, *, now: datetime) -> bool:
        """Watch a job the upstream signalled that nobody watches, when discovery covers its
        account; True when a watch was made (its job is due now)."""
        canonical = canonical_job_id(job_id)
        if canonical is None or not self.discovers(account):
            return False
        # A job some client watches (even one whose watches ended) is not discovery's to reopen.
        if await self.store.watches.of_job(canonical, accounts=[account], limit=1):
            return False
        return bool(await self._watch(account, [canonical], now=now))

    async def _step(self, account: str, now: datetime) -> int:
        current = self.rounds[account]
        allowed = await self.store.discovery.claim_list_request(
            account=account,
            now=now,
            decide=partial(allow_list, limits=self.limits[account], now=now),
        )
        if not allowed:
            return 0
        outcome = await self.upstream[account].list_jobs(
            status=current.status, cursor=current.cursor, limit=self.page_size
        )
        self.metrics.polls.labels(account, type(outcome).__name__.lower()).inc()
        await self._observe(account, outcome, now)
        if isinstance(outcome, Listed):
            await self._watch(account, jobs_to_watch(outcome.page), now=now)
            following = next_round(current, outcome.page)
            if following is None:
                del self.rounds[account]
            else:
                self.rounds[account] = following
        elif not isinstance(outcome, RateLimited):  # a 429 pauses the budget; the page waits
            log.warning(
                "a discovery listing failed; the account is listed again next round",
                extra={
                    "account": account,
                    "outcome": type(outcome).__name__,
                    "status_code": outcome.status_code,
                },
            )
            del self.rounds[account]
        return 1

    async def _watch(self, account: str, job_ids: list[str], *, now: datetime) -> list[str]:
        added = await self.store.discovery.watch(
            client=DISCOVERY_CLIENT, account=account, job_ids=job_ids, now=now, ttl=self.ttl
        )
        if added:
            self.metrics.discovered.labels(account).inc(len(added))
            log.info("discovered jobs", extra={"account": account, "jobs": len(added)})
            if self.on_watched is not None:
                self.on_watched()
        return added

    async def _observe(self, account: str, outcome: ListOutcome, now: datetime) -> None:
        """Fold the answer's X-RateLimit-* headers and any 429 into the account's budget row."""
        limited = isinstance(outcome, RateLimited)
        rl = outcome.rate_limit
        if rl is None and not limited:
            return

        def fold(state: BudgetState) -> BudgetState:
            return observe(
                state,
                now=now,
                remaining=rl.remaining if rl else None,
                reset_at=rl.reset_at if rl else None,
                retry_after_s=outcome.retry_after_s if isinstance(outcome, RateLimited) else None,
                rate_limited=limited,
            )

        await self.store.jobs.update_budgets({account: fold}, now=now)
        if rl is not None and rl.remaining is not None:
            self.metrics.budget_remaining.labels(account).set(rl.remaining)
        if limited:
            log.warning(
                "upstream rate limit on a listing: account paused", extra={"account": account}
            )
