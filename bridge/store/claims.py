"""The SQL of a poll claim, inside its transaction: due jobs in each client's queue, what the rolling
hour's poll log says, and leasing the jobs the budget policy chose."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.listed import one_of
from bridge.store.rows import Waiting
from bridge.store.tables import account_budgets, poll_log, upstream_jobs, watches

J, B, W = upstream_jobs, account_budgets, watches
HOUR = timedelta(hours=1)  # the rolling window of the poll log
Key = tuple[str, str]
Candidate = tuple[str, str, str]  # account, job id, client


@dataclass
class Window:
    """One account's polls in the rolling hour: how many, the oldest, each client's latest."""

    used: int = 0
    oldest: datetime | None = None
    last_served: dict[str, datetime] = field(default_factory=dict)


async def due_candidates(
    conn: AsyncConnection,
    *,
    now: datetime,
    accounts: Collection[str],
    per_client: int,
    limit: int,
) -> list[Candidate]:
    """The first `per_client` due, unleased jobs of each client's queue on each account whose
    budget may grant now: (account, job id, client), a job once per client watching it.

    Asked first without the list of `accounts` (thousands of them cost more than the query): when
    no other account's job comes up, the answer is the same, as each account ranks its own jobs.
    """
    found = await _due(conn, now=now, accounts=None, per_client=per_client, limit=limit)
    if all(account in accounts for account, _, _ in found):
        return found
    return await _due(conn, now=now, accounts=accounts, per_client=per_client, limit=limit)


async def _due(
    conn: AsyncConnection,
    *,
    now: datetime,
    accounts: Collection[str] | None,
    per_client: int,
    limit: int,
) -> list[Candidate]:
    watching = and_(W.c.account == J.c.account, W.c.job_id == J.c.job_id, W.c.status == "active")
    pairs = (
        select(
            J.c.account,
            J.c.job_id,
            func.coalesce(W.c.client, "").label("client"),
            J.c.priority,
            J.c.next_poll_at,
            J.c.last_polled_at,
        )
        .select_from(J.join(B, B.c.account == J.c.account).outerjoin(W, watching))
        .where(J.c.next_poll_at <= now)
        .where(or_(J.c.lease_expires_at.is_(None), J.c.lease_expires_at < now))
        .where(or_(B.c.next_grant_at.is_(None), B.c.next_grant_at <= now))
        .distinct()
    )
    if accounts is not None:
        pairs = pairs.where(one_of(J.c.account, accounts, conn.dialect.name))
    queued = pairs.subquery()
    in_queue_order = (
        queued.c.priority.desc(),
        queued.c.next_poll_at,
        queued.c.last_polled_at.asc().nulls_first(),
    )
    rank = func.row_number().over(
        partition_by=(queued.c.account, queued.c.client), order_by=in_queue_order
    )
    ranked = select(queued, rank.label("rank")).subquery()
    query = (
        select(ranked.c.account, ranked.c.job_id, ranked.c.client)
        .where(ranked.c.rank <= per_client)
        .order_by(ranked.c.priority.desc(), ranked.c.next_poll_at)
        .limit(limit)
    )
    return [(r.account, r.job_id, r.client) for r in await conn.execute(query)]


async def poll_windows(
    conn: AsyncConnection, *, accounts: Sequence[str], now: datetime
) -> dict[str, Window]:
    """Each account's rolling hour of polls, by every replica."""
    out: dict[str, Window] = {a: Window() for a in accounts}
    rows = await conn.execute(
        select(
            poll_log.c.account,
            poll_log.c.client,
            func.count().label("n"),
            func.min(poll_log.c.at).label("oldest"),
            func.max(poll_log.c.at).label("latest"),
        )
        .where(poll_log.c.account.in_(list(accounts)), poll_log.c.at > now - HOUR)
        .group_by(poll_log.c.account, poll_log.c.client)
    )
    for r in rows:
        window = out[r.account]
        window.used += int(r.n)
        window.oldest = r.oldest if window.oldest is None else min(window.oldest, r.oldest)
        if r.client is not None:
            window.last_served[r.client] = r.latest
    return out


async def in_flight(
    conn: AsyncConnection, *, accounts: Sequence[str], now: datetime
) -> dict[str, int]:
    """Polls leased and not yet written, per account."""
    rows = await conn.execute(
        select(J.c.account, func.count().label("n"))
        .where(J.c.account.in_(list(accounts)), J.c.lease_expires_at >= now)
        .group_by(J.c.account)
    )
    return {r.account: int(r.n) for r in rows}


async def lease(
    conn: AsyncConnection,
    chosen: Sequence[Waiting],
    *,
    owner: str,
    until: datetime,
    now: datetime,
) -> None:
    """Lease the chosen jobs to `owner` and log each poll, charged to the client whose turn it was."""
    if not chosen:
        return
    await conn.execute(
        update(J)
        .where(J.c.account == bindparam("b_account"), J.c.job_id == bindparam("b_job_id"))
        .values(lease_owner=owner, lease_expires_at=until),
        [{"b_account": w.account, "b_job_id": w.job_id} for w in chosen],
    )
    await conn.execute(
        poll_log.insert(),
        [{"account": w.account, "at": now, "client": w.client or None} for w in chosen],
    )
