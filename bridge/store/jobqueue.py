"""Upstream job queries: claim due jobs within each account's budget, and write what a poll found.

Claims are leases: a job is polled by one replica at a time, and a killed replica's jobs come back when
its lease expires. Everything a poll produces (snapshot, schedule, events, their deliveries, watch
changes) is written by `apply_plans` in one transaction, so a crash loses or duplicates nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.polling.budget import HOUR, BudgetState, Limits, grant, next_grant_at
from bridge.store.records import WatchRecord
from bridge.store.rows import Claim, JobRow, JobWrite
from bridge.store.tables import (
    account_budgets,
    deliveries,
    events,
    poll_log,
    upstream_jobs,
    watches,
)
from bridge.store.upsert import insert_for
from bridge.store.watches import watch_record

log = logging.getLogger(__name__)
J = upstream_jobs
B = account_budgets
Key = tuple[str, str]
Planner = Callable[[JobRow, list[WatchRecord]], JobWrite]
_BUDGET_FIELDS = ("next_slot_at", "paused_until", "remaining", "reset_at")


def _fields(obj: Any) -> dict[str, Any]:
    """A slotted dataclass's fields, shallow: `dataclasses.asdict` deep-copies every snapshot and
    payload, which was most of a poll's CPU."""
    return {name: getattr(obj, name) for name in obj.__slots__}


def _budget_state(row: Any) -> BudgetState:
    return BudgetState(**{name: row._mapping[name] for name in _BUDGET_FIELDS})


def _job_row(row: Any) -> JobRow:
    return JobRow(**{f.name: row._mapping[f.name] for f in fields(JobRow)})


class JobQueries:
    """The polling half of the store; mixed into `Store`."""

    engine: AsyncEngine
    reader: AsyncEngine
    dialect: str

    async def ensure_budgets(self, accounts: Sequence[str], *, now: datetime) -> None:
        """Create a budget row for each configured account that has none."""
        if not accounts:
            return
        stmt = insert_for(self.dialect, B).on_conflict_do_nothing(index_elements=["account"])
        async with self.engine.begin() as conn:
            await conn.execute(stmt, [{"account": a, "updated_at": now} for a in accounts])

    async def read_budget(self, account: str) -> BudgetState | None:
        """The account's stored budget state (for metrics and tests)."""
        async with self.reader.connect() as conn:
            row = (await conn.execute(select(B).where(B.c.account == account))).first()
        return _budget_state(row) if row else None

    async def polls_since(self, account: str, since: datetime) -> int:
        """How many polls the account started after `since`, by every replica."""
        query = select(func.count()).where(poll_log.c.account == account, poll_log.c.at > since)
        async with self.reader.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def claim_due_jobs(
        self, *, now: datetime, owner: str, lease: timedelta, limits: dict[str, Limits], limit: int
    ) -> list[Claim]:
        """Lease up to `limit` due jobs, as many per account as its budget grants now."""
        if not limits:
            return []
        async with self.engine.begin() as conn:
            candidates = await self._candidates(conn, now=now, limits=limits, limit=limit)
            if not candidates:
                return []
            accounts = sorted({c[0] for c in candidates})
            budgets = {
                r.account: r
                for r in await conn.execute(
                    select(B)
                    .where(B.c.account.in_(accounts))
                    .order_by(B.c.account)
                    .with_for_update(skip_locked=True)
                )
            }
            jobs = [
                _job_row(r)
                for r in await conn.execute(
                    select(J)
                    .where(tuple_(J.c.account, J.c.job_id).in_(candidates))
                    .where(J.c.next_poll_at <= now)
                    .where(or_(J.c.lease_expires_at.is_(None), J.c.lease_expires_at < now))
                    .where(J.c.account.in_(list(budgets)))
                    .order_by(J.c.account, J.c.job_id)
                    .with_for_update(skip_locked=True)
                )
            ]
            chosen = await self._grant(conn, jobs=jobs, budgets=budgets, limits=limits, now=now)
            await self._lease(conn, chosen, owner=owner, until=now + lease, now=now)
        return [Claim(job=j, due_at=j.next_poll_at or now) for j in chosen]

    async def _candidates(
        self, conn: AsyncConnection, *, now: datetime, limits: dict[str, Limits], limit: int
    ) -> list[Key]:
        rank = (
            func.row_number()
            .over(partition_by=J.c.account, order_by=(J.c.priority.desc(), J.c.next_poll_at))
            .label("rank")
        )
        inner = (
            select(J.c.account, J.c.job_id, J.c.priority, J.c.next_poll_at, rank)
            .select_from(J.join(B, B.c.account == J.c.account))
            .where(J.c.next_poll_at <= now, J.c.account.in_(list(limits)))
            .where(or_(J.c.lease_expires_at.is_(None), J.c.lease_expires_at < now))
            .where(or_(B.c.next_grant_at.is_(None), B.c.next_grant_at <= now))
            .subquery()
        )
        widest = max(lim.max_concurrency for lim in limits.values())
        query = (
            select(inner.c.account, inner.c.job_id)
            .where(inner.c.rank <= widest)
            .order_by(inner.c.priority.desc(), inner.c.next_poll_at)
            .limit(limit)
        )
        return [(r.account, r.job_id) for r in await conn.execute(query)]

    async def _grant(
        self,
        conn: AsyncConnection,
        *,
        jobs: list[JobRow],
        budgets: dict[str, Any],
        limits: dict[str, Limits],
        now: datetime,
    ) -> list[JobRow]:
        by_account: dict[str, list[JobRow]] = defaultdict(list)
        for job in sorted(jobs, key=lambda j: (-j.priority, j.next_poll_at or now)):
            by_account[job.account].append(job)
        if not by_account:
            return []
        accounts = list(by_account)
        window = {
            r.account: (int(r.n), r.oldest)
            for r in await conn.execute(
                select(
                    poll_log.c.account,
                    func.count().label("n"),
                    func.min(poll_log.c.at).label("oldest"),
                )
                .where(poll_log.c.account.in_(accounts), poll_log.c.at > now - HOUR)
                .group_by(poll_log.c.account)
            )
        }
        in_flight = {
            r.account: int(r.n)
            for r in await conn.execute(
                select(J.c.account, func.count().label("n"))
                .where(J.c.account.in_(accounts), J.c.lease_expires_at >= now)
                .group_by(J.c.account)
            )
        }
        chosen: list[JobRow] = []
        budget_rows = []
        for account, queue in by_account.items():
            used, oldest = window.get(account, (0, None))
            state = _budget_state(budgets[account])
            k, state = grant(
                state,
                limits=limits[account],
                now=now,
                wanted=len(queue),
                used_last_hour=used,
                in_flight=in_flight.get(account, 0),
            )
            chosen += queue[:k]
            full = used + k >= limits[account].polls_per_hour
            earliest = next_grant_at(
                state,
                limits=limits[account],
                now=now,
                oldest_in_window=(oldest or now) if full else None,
            )
            budget_rows.append(
                {
                    "b_account": account,
                    **_fields(state),
                    "next_grant_at": earliest,
                    "updated_at": now,
                }
            )
        await conn.execute(update(B).where(B.c.account == bindparam("b_account")), budget_rows)
        return chosen

    async def _lease(
        self,
        conn: AsyncConnection,
        jobs: list[JobRow],
        *,
        owner: str,
        until: datetime,
        now: datetime,
    ) -> None:
        if not jobs:
            return
        await conn.execute(
            update(J)
            .where(J.c.account == bindparam("b_account"), J.c.job_id == bindparam("b_job_id"))
            .values(lease_owner=owner, lease_expires_at=until),
            [{"b_account": j.account, "b_job_id": j.job_id} for j in jobs],
        )
        await conn.execute(poll_log.insert(), [{"account": j.account, "at": now} for j in jobs])

    async def signal_job(self, *, account: str, job_id: str, now: datetime) -> bool:
        """The upstream said the job moved: poll it first, and now. False if nobody watches it."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(J)
                .where(J.c.account == account, J.c.job_id == job_id, J.c.next_poll_at.is_not(None))
                .values(priority=1, next_poll_at=now, updated_at=now)
            )
        return bool(result.rowcount)

    async def release_jobs(self, keys: Sequence[Key], *, owner: str) -> None:
        """Give up leases without polling (shutdown before the polls started)."""
        if not keys:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(J)
                .where(tuple_(J.c.account, J.c.job_id).in_(list(keys)), J.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def update_budgets(
        self, changes: Mapping[str, Callable[[BudgetState], BudgetState]], *, now: datetime
    ) -> None:
        """Fold what upstream responses said into each account's budget, under its row lock."""
        if not changes:
            return
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                select(B)
                .where(B.c.account.in_(list(changes)))
                .order_by(B.c.account)
                .with_for_update()
            )
            params = [
                {
                    "b_account": r.account,
                    **_fields(changes[r.account](_budget_state(r))),
                    "next_grant_at": None,
                    "updated_at": now,
                }
                for r in rows
            ]
            if params:
                await conn.execute(update(B).where(B.c.account == bindparam("b_account")), params)

    async def prune_poll_log(self, *, now: datetime) -> None:
        """Forget polls older than an hour: the rolling window no longer counts them."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(poll_log).where(poll_log.c.at <= now - HOUR))

    async def jobs_of_account(self, account: str) -> list[Key]:
        """Jobs of the account that still have an active watch."""
        query = (
            select(watches.c.account, watches.c.job_id)
            .where(watches.c.account == account, watches.c.status == "active")
            .distinct()
        )
        async with self.reader.connect() as conn:
            return [(r.account, r.job_id) for r in await conn.execute(query)]

    async def jobs_with_expired_watches(self, *, now: datetime, limit: int) -> list[Key]:
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
        self, keys: Sequence[Key], planner: Planner, *, now: datetime, owner: str | None = None
    ) -> list[JobWrite]:
        """In one transaction: lock the jobs (only those still leased to `owner`, when given) and their
        active watches, ask `planner` what to write for each, and write it all."""
        if not keys:
            return []
        async with self.engine.begin() as conn:
            query = (
                select(J)
                .where(tuple_(J.c.account, J.c.job_id).in_(list(keys)))
                .order_by(J.c.account, J.c.job_id)  # one lock order everywhere: no deadlocks
            )
            if owner is not None:
                query = query.where(J.c.lease_owner == owner)
            jobs = [_job_row(r) for r in await conn.execute(query.with_for_update())]
            if not jobs:
                return []
            active = await self._active_watches(conn, jobs)
            planned, writes = [], []
            for job in jobs:
                try:
                    write = planner(job, active.get((job.account, job.job_id), []))
                except Exception:
                    # One job's bad data must not roll back the whole batch; its lease expires
                    # and it is tried again.
                    log.exception(
                        "planning a job failed",
                        extra={"account": job.account, "job_id": job.job_id},
                    )
                    continue
                planned.append(job)
                writes.append(write)
            await self._write(conn, planned, writes, now=now)
        return writes

    async def _active_watches(
        self, conn: AsyncConnection, jobs: list[JobRow]
    ) -> dict[Key, list[WatchRecord]]:
        keys = [(j.account, j.job_id) for j in jobs]
        by_key = {(j.account, j.job_id): j for j in jobs}
        rows = await conn.execute(
            select(watches)
            .where(
                tuple_(watches.c.account, watches.c.job_id).in_(keys), watches.c.status == "active"
            )
            .order_by(watches.c.id)
            .with_for_update()
        )
        out: dict[Key, list[WatchRecord]] = defaultdict(list)
        for row in rows:
            job = by_key[(row.account, row.job_id)]
            mapping = {
                **row._mapping,
                "snapshot": job.snapshot,
                "last_polled_at": job.last_polled_at,
                "next_poll_at": job.next_poll_at,
            }
            out[(row.account, row.job_id)].append(watch_record(mapping))
        return out

    async def _write(
        self, conn: AsyncConnection, jobs: list[JobRow], writes: list[JobWrite], *, now: datetime
    ) -> None:
        job_params, stop_params, watch_params, event_rows, delivery_rows = [], [], [], [], []
        for job, write in zip(jobs, writes, strict=True):
            key = {"b_account": job.account, "b_job_id": job.job_id}
            if write.job is not None:
                job_params.append(
                    {
                        **key,
                        **_fields(write.job),
                        "lease_owner": None,
                        "lease_expires_at": None,
                        "updated_at": now,
                    }
                )
            elif write.stop_polling:
                stop_params.append(key)
            watch_params += [{"b_id": w.id, **_fields(w), "updated_at": now} for w in write.watches]
            event_rows += [_fields(e) for e in write.events]
            delivery_rows += [
                {
                    **_fields(d),
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for d in write.deliveries
            ]
        by_key = J.c.account == bindparam("b_account"), J.c.job_id == bindparam("b_job_id")
        if job_params:
            await conn.execute(update(J).where(*by_key), job_params)
        if stop_params:
            await conn.execute(update(J).where(*by_key).values(next_poll_at=None), stop_params)
        if watch_params:
            for p in watch_params:
                del p["id"]
            await conn.execute(
                update(watches).where(watches.c.id == bindparam("b_id")), watch_params
            )
        if event_rows:
            await conn.execute(events.insert(), event_rows)
        if delivery_rows:
            await conn.execute(deliveries.insert(), delivery_rows)
