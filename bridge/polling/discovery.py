"""Discovery's decisions: which accounts discover, whether a list request may start now, and how a
round walks the listing. Pure: no I/O, no clock.

A round lists an account's queued jobs, then its processing ones (`GET /product-photo-jobs?status=`,
following `next_cursor`), one page per list request. Queued first: a job that starts meanwhile is
then listed as processing rather than missed. Every list request is a poll of the account's budget
(`budget.grant`, the same pacing and rolling-hour cap as job polls), and discovery spends at most a
quarter of `polls_per_hour` in any rolling hour, spread out, so polling the jobs already watched
always keeps three quarters of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bridge.config import AccountConfig
from bridge.polling import budget
from bridge.polling.budget import Limits
from bridge.polling.outcomes import JobPage
from bridge.store.discovery import ListDemand
from bridge.store.rows import BudgetRow

LIST_STATUSES = ("queued", "processing")
SHARE = 4  # discovery spends at most 1/SHARE of an account's polls_per_hour in any rolling hour
HALF_HOUR_S = 1800.0
MAX_PAGES = 50  # per round: a cursor that never ends cannot keep spending the share


def discovering_accounts(
    accounts: Mapping[str, AccountConfig], subscribed: Iterable[str]
) -> frozenset[str]:
    """The configured accounts whose jobs discovery lists: `discover: true`, or a channel's
    subscription to the account."""
    chosen = {name for name, account in accounts.items() if account.discover}
    return frozenset(chosen | (set(subscribed) & set(accounts)))


def list_share(polls_per_hour: int) -> int:
    """List requests discovery may spend in any rolling hour (at least one, so it can run)."""
    return max(1, polls_per_hour // SHARE)


def list_gap(polls_per_hour: int) -> timedelta:
    """The least time between two list requests: the share spread over half an hour, so a round's
    pages come steadily and the rest of the hour still has some."""
    return timedelta(seconds=HALF_HOUR_S / list_share(polls_per_hour))


def allow_list(demand: ListDemand, *, limits: Limits, now: datetime) -> BudgetRow | None:
    """The budget row after one more list request, or None when it may not start now: discovery's
    share of the hour is spent, its last request was too recent, or the account's budget (the
    rolling hour, a pause, the upstream's word, concurrency) says no.

    A list request takes the pacing slot after the one polls are next due to take (one step of
    lead), and pushes them back by one: it never races the poller for a slot (the poller, always
    with due jobs, would win every time) and the two together still keep the pace.
    """
    if demand.listed_last_hour >= list_share(limits.polls_per_hour):
        return None
    last = demand.last_listed_at
    if last is not None and now - last < list_gap(limits.polls_per_hour):
        return None
    state = demand.budget
    step = timedelta(seconds=budget.interval(state, limits, now))
    ahead = state.next_slot_at
    granted, after = budget.grant(
        state if ahead is None else replace(state, next_slot_at=ahead - step),
        limits=limits,
        now=now,
        wanted=1,
        used_last_hour=demand.used_last_hour,
        in_flight=demand.in_flight,
    )
    if not granted:
        return None
    return replace(after, next_slot_at=max(ahead or now, now) + step)


def due_accounts(
    discovering: Collection[str],
    *,
    in_round: Collection[str],
    next_at: Mapping[str, datetime],
    now: datetime,
) -> list[str]:
    """The discovering accounts that may start a round now: none running here, and not known to be
    taken until later (another replica's round, or this one's last)."""
    return sorted(
        a for a in discovering if a not in in_round and (a not in next_at or next_at[a] <= now)
    )


@dataclass(frozen=True, slots=True)
class Round:
    """Where an account's round is: the statuses still to list (the current first) and the cursor."""

    account: str
    statuses: tuple[str, ...] = LIST_STATUSES
    cursor: str | None = None
    pages: int = 0
    cursors: frozenset[str] = frozenset()  # followed in this status: a repeat ends it

    @property
    def status(self) -> str:
        """The status this round is listing now."""
        return self.statuses[0]


def next_round(current: Round, page: JobPage) -> Round | None:
    """The round after one page: the next page of this status, the next status, or None (done)."""
    pages = current.pages + 1
    if pages >= MAX_PAGES:
        return None
    cursor = page.next_cursor
    if cursor is not None and page.jobs and cursor not in current.cursors:
        return replace(current, cursor=cursor, pages=pages, cursors=current.cursors | {cursor})
    rest = current.statuses[1:]
    return Round(current.account, rest, pages=pages) if rest else None


def canonical_job_id(value: str) -> str | None:
    """The job id as watches store it (a lower-case UUID), or None when it is no UUID."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def jobs_to_watch(page: JobPage) -> list[str]:
    """The page's job ids that discovery watches: UUIDs listed as queued or processing (or with no
    status: the listing was filtered by it); a job that already ended is not news."""
    found = (
        canonical_job_id(job_id)
        for job_id, status in page.jobs
        if status is None or status in LIST_STATUSES
    )
    return sorted({job_id for job_id in found if job_id is not None})
