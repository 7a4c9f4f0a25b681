"""Upstream job queries: claim due jobs within each account's budget (clients taking turns), and write what a poll found.

Claims are leases: a job is polled by one replica at a time, and a killed replica's jobs come back when
its lease expires. Everything a poll produces (snapshot, schedule, events, their deliveries, watch
changes) is written by `apply_plans` in one transaction, so a crash loses or duplicates nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, delete, or_, select, update
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.events.import_events import ImportEventPlanner
from bridge.store.claims import HOUR, Candidate, due_candidates, in_flight, poll_windows
from bridge.store.claims import lease as lease_jobs
from bridge.store.database import Repository
from bridge.store.import_writes import import_changes, roll_up
from bridge.store.listed import pair_of
from bridge.store.plan_writes import (
    Planner,
    active_watches,
    fields_of,
    plan_one,
    storage_down,
    write_plans,
)
from bridge.store.rows import (
    AccountDemand,
    BudgetRow,
    Claim,
    GrantPolicy,
    JobRow,
    JobWrite,
    Waiting,
)
from bridge.store.tables import (
    account_budgets,
    poll_log,
    upstream_jobs,
    watches,
)
from bridge.store.upsert import insert_for

log = logging.getLogger(__name__)
J = upstream_jobs
B = account_budgets
Key = tuple[str, str]
_BUDGET_FIELDS = tuple(f.name for f in fields(BudgetRow))


def _budget_row(row: Any) -> BudgetRow:
    m = row._mapping
    return BudgetRow(*(m[name] for name in _BUDGET_FIELDS))


# Job rows are read in JobRow's field order and built positionally: a poll reads its job twice.
_JOB_COLUMNS = [J.c[f.name] for f in fields(JobRow)]
# A claim's rows leave the snapshot (JobRow's first field) out: decoding it was a good part of a
# claim's CPU, and the poll's write reads it again anyway, under the job's lock.
_CLAIMED = _JOB_COLUMNS[1:]
assert _JOB_COLUMNS[0].name == "snapshot"


def _job_row(row: Any) -> JobRow:
    return JobRow(*row)


def _claimed_row(row: Any) -> JobRow:
    return JobRow(None, *row)


def _queues(
    candidates: Sequence[Candidate], jobs: Mapping[Key, JobRow], *, now: datetime
) -> dict[str, list[Waiting]]:
    """Each account's due jobs as the clients' queues hold them, as the locked rows say now."""
    out: dict[str, list[Waiting]] = defaultdict(list)
    for account, job_id, client in candidates:
        job = jobs.get((account, job_id))
        if job is not None:  # skipped: leased or locked meanwhile, or its budget row was
            due = job.next_poll_at or now
            out[account].append(
                Waiting(client, account, job_id, job.priority, due, job.last_polled_at)
            )
    return out


class JobQueue(Repository):
    """The job queue: budget rows, leased claims of due jobs, and writing what polls found."""

    async def ensure_budgets(self, accounts: Sequence[str], *, now: datetime) -> None:
        """Create a budget row for each configured account that has none."""
        if not accounts:
            return
        stmt = insert_for(self.dialect, B).on_conflict_do_nothing(index_elements=["account"])
        async with self.engine.begin() as conn:
            await conn.execute(stmt, [{"account": a, "updated_at": now} for a in accounts])

    async def claim_due(
        self,
        *,
        now: datetime,
        owner: str,
        lease: timedelta,
        accounts: Collection[str],
        per_account: int,
        limit: int,
        decide: GrantPolicy,
    ) -> list[Claim]:
        """Lease up to `limit` due jobs (at most `per_account` each): those the caller's budget
        policy `decide` picks from each client's queue, under the budget rows' locks. A claim's job
        row comes without its snapshot (None): the poll's write reads that under its lock."""
        if not accounts:
            return []
        async with self.engine.begin() as conn:
            candidates = await due_candidates(
                conn, now=now, accounts=accounts, per_client=per_account, limit=limit
            )
            if not candidates:
                return []
            due_accounts = sorted({c[0] for c in candidates})
            budgets = {
                r.account: r
                for r in await conn.execute(
                    select(B)
                    .where(B.c.account.in_(due_accounts))
                    .order_by(B.c.account)
                    .with_for_update(skip_locked=True)
                )
            }
            keys = sorted({(a, j) for a, j, _ in candidates})
            jobs = {
                (r.account, r.job_id): _claimed_row(r)
                for r in await conn.execute(
                    select(*_CLAIMED)
                    .where(pair_of(J.c.account, J.c.job_id, keys, conn.dialect.name))
                    .where(J.c.next_poll_at <= now)
                    .where(or_(J.c.lease_expires_at.is_(None), J.c.lease_expires_at < now))
                    .where(J.c.account.in_(list(budgets)))
                    .order_by(J.c.account, J.c.job_id)
                    .with_for_update(skip_locked=True)
                )
            }
            queues = _queues(candidates, jobs, now=now)
            chosen = await self._grant(conn, queues=queues, budgets=budgets, decide=decide, now=now)
            await lease_jobs(conn, chosen, owner=owner, until=now + lease, now=now)
        return [
            Claim(job=job, due_at=job.next_poll_at or now)
            for job in (jobs[(w.account, w.job_id)] for w in chosen)
        ]

    async def _grant(
        self,
        conn: AsyncConnection,
        *,
        queues: dict[str, list[Waiting]],
        budgets: dict[str, Any],
        decide: GrantPolicy,
        now: datetime,
    ) -> list[Waiting]:
        if not queues:
            return []
        windows = await poll_windows(conn, accounts=list(queues), now=now)
        leased = await in_flight(conn, accounts=list(queues), now=now)
        chosen: list[Waiting] = []
        budget_rows = []
        for account, queue in queues.items():
            window = windows[account]
            granted = decide(
                AccountDemand(
                    account=account,
                    budget=_budget_row(budgets[account]),
                    queue=tuple(queue),
                    last_served=window.last_served,
                    used_last_hour=window.used,
                    oldest_in_window=window.oldest,
                    in_flight=leased.get(account, 0),
                )
            )
            chosen += granted.chosen
            budget_rows.append(
                {
                    "b_account": account,
                    **fields_of(granted.budget),
                    "next_grant_at": granted.next_grant_at,
                    "updated_at": now,
                }
            )
        await conn.execute(update(B).where(B.c.account == bindparam("b_account")), budget_rows)
        return chosen

    async def signal(self, *, account: str, job_id: str, now: datetime) -> bool:
        """The upstream said the job moved: poll it first, and now. False if nobody watches it."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(J)
                .where(J.c.account == account, J.c.job_id == job_id, J.c.next_poll_at.is_not(None))
                # Never later than it was: a job due earlier keeps its place in the queue, so a
                # stream of signals for busy jobs cannot starve a job waiting for its first poll.
                .values(
                    priority=1,
                    next_poll_at=case((J.c.next_poll_at < now, J.c.next_poll_at), else_=now),
                    updated_at=now,
                )
            )
        return bool(result.rowcount)

    async def update_budgets(
        self, changes: Mapping[str, Callable[[BudgetRow], BudgetRow]], *, now: datetime
    ) -> dict[str, BudgetRow]:
        """Fold what upstream responses said into each account's budget, under its row lock;
        returns the rows as written."""
        if not changes:
            return {}
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                select(B)
                .where(B.c.account.in_(list(changes)))
                .order_by(B.c.account)
                .with_for_update()
            )
            written = {r.account: changes[r.account](_budget_row(r)) for r in rows}
            params = [
                {"b_account": account, **fields_of(row), "next_grant_at": None, "updated_at": now}
                for account, row in written.items()
            ]
            if params:
                await conn.execute(update(B).where(B.c.account == bindparam("b_account")), params)
        return written

    async def prune_poll_log(self, *, now: datetime) -> None:
        """Forget polls older than an hour: the rolling window no longer counts them."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(poll_log).where(poll_log.c.at <= now - HOUR))

    async def watched_by_account(self, account: str) -> list[Key]:
        """Jobs of the account that still have an active watch."""
        query = (
            select(watches.c.account, watches.c.job_id)
            .where(watches.c.account == account, watches.c.status == "active")
            .distinct()
        )
        async with self.reader.connect() as conn:
            return [(r.account, r.job_id) for r in await conn.execute(query)]

    async def with_expired_watches(self, *, now: datetime, limit: int) -> list[Key]:
        """Jobs that have an active watch whose TTL has passed."""
        query = (
            select(watches.c.account, watches.c.job_id)
            .where(watches.c.status == "active", watches.c.expires_at <= now)
            .distinct()
            .limit(limit)
        )
        async with self.reader.connect() as conn:
            return [(r.account, r.job_id) for r in await conn.execute(query)]

    async def apply_plans(
        self,
        keys: Sequence[Key],
        planner: Planner,
        *,
        now: datetime,
        owner: str | None = None,
        on_error: Planner | None = None,
        imports: ImportEventPlanner | None = None,
    ) -> list[JobWrite]:
        """In one transaction: lock the jobs (only those still leased to `owner`, when given) and their
        active watches, ask `planner` what to write for each, and write it all, with what it
        changes in the watches' imports (whose events `imports` plans).

        A job whose planning raises gets `on_error`'s plan instead (without one it is skipped and
        its lease expires). Should the batch's rows fail to write, the jobs are written one at a
        time, so only a job whose own rows cannot be written gets `on_error`'s plan.
        """
        if not keys:
            return []
        try:
            return await self._apply(keys, planner, on_error, now=now, owner=owner, imports=imports)
        except StatementError as exc:
            if on_error is None or storage_down(exc):
                raise
            log.exception("writing a poll batch failed; writing its jobs one at a time")
        writes: list[JobWrite] = []
        for key in keys:
            try:
                writes += await self._apply(
                    [key], planner, on_error, now=now, owner=owner, imports=imports
                )
            except StatementError as exc:
                if storage_down(exc):
                    raise
                log.exception(
                    "writing a job's poll failed", extra={"account": key[0], "job_id": key[1]}
                )
                writes += await self._apply(
                    [key], on_error, None, now=now, owner=owner, imports=imports
                )
        return writes

    async def _apply(
        self,
        keys: Sequence[Key],
        planner: Planner,
        on_error: Planner | None,
        *,
        now: datetime,
        owner: str | None,
        imports: ImportEventPlanner | None,
    ) -> list[JobWrite]:
        async with self.engine.begin() as conn:
            query = (
                select(*_JOB_COLUMNS)
                .where(pair_of(J.c.account, J.c.job_id, list(keys), conn.dialect.name))
                .order_by(J.c.account, J.c.job_id)  # one lock order everywhere: no deadlocks
            )
            if owner is not None:
                query = query.where(J.c.lease_owner == owner)
            jobs = [_job_row(r) for r in await conn.execute(query.with_for_update())]
            if not jobs:
                return []
            active, read_imports = await active_watches(conn, jobs)
            planned, writes = [], []
            for job in jobs:
                watching = active.get((job.account, job.job_id), [])
                write = plan_one(job, watching, planner, on_error)
                if write is not None:
                    planned.append(job)
                    writes.append(write)
            await write_plans(conn, planned, writes, now=now)
            changes = import_changes(planned, writes, active)
            if changes and imports is not None:
                await roll_up(conn, changes, planner=imports, now=now, read=read_imports)
        return writes
