"""Retention: delete what ended long ago, one bounded batch per transaction, one replica at a time.

A watch goes once it ended before the cutoff and none of its deliveries is pending or changed since
the cutoff (a delivery that died, or was retried, late keeps its watch a full retention period after
that). Its events, deliveries and attempts go with it, and so does its upstream job row once no watch
refers to the job and nothing polls it. Anything active or pending is never touched.

An import goes once it ended before the cutoff, none of its watches is active or ended since the
cutoff (they usually went first), and none of its own deliveries is pending or changed since the
cutoff; its events, deliveries, attempts and failures go with it. An open or running import stays.

Each kind of record is pruned by one function over the caller's transaction (`_PRUNERS`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.events.vocabulary import IMPORT_FINAL
from bridge.store.database import Repository
from bridge.store.tables import (
    deliveries,
    delivery_attempts,
    events,
    import_failures,
    imports,
    upstream_jobs,
    watches,
)

W, D, J, I = watches, deliveries, upstream_jobs, imports  # noqa: E741
PRUNE_LOCK = 72_941_002  # any constant: the PostgreSQL advisory lock one pruning replica holds
Pruner = Callable[..., Awaitable[int]]


class Retention(Repository):
    """Deletes ended watches and imports with everything that hangs off them."""

    async def prune(self, *, ended_before: datetime, now: datetime, limit: int) -> int:
        """Delete one batch of at most `limit` records that ended before `ended_before`.

        Returns how many were deleted: 0 when nothing is old enough or another replica is pruning.
        """
        async with self.engine.begin() as conn:
            if not await self._our_turn(conn):
                return 0
            pruned = 0
            for pruner in _PRUNERS:
                if pruned >= limit:
                    break
                pruned += await pruner(
                    conn, ended_before=ended_before, now=now, limit=limit - pruned
                )
            return pruned

    async def _our_turn(self, conn: AsyncConnection) -> bool:
        """PostgreSQL: hold the pruning lock for this transaction, or let the replica that has it
        work alone. SQLite has one process and one writer: always our turn."""
        if self.dialect != "postgresql":
            return True
        taken = await conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PRUNE_LOCK}
        )
        return bool(taken.scalar())


async def prune_watches(
    conn: AsyncConnection, *, ended_before: datetime, now: datetime, limit: int
) -> int:
    """Delete up to `limit` ended watches old enough to go, with their events, deliveries,
    attempts and job rows; oldest first."""
    candidates = await conn.execute(
        select(W.c.id, W.c.account, W.c.job_id)
        .where(W.c.ended_at < ended_before, W.c.status != "active")
        .order_by(W.c.ended_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    found = {r.id: (r.account, r.job_id) for r in candidates}
    if not found:
        return 0
    # Locked, and read as they are now: a delivery retried meanwhile keeps its watch.
    kept = await conn.execute(
        select(D.c.watch_id)
        .where(D.c.watch_id.in_(list(found)))
        .where(or_(D.c.status == "pending", D.c.updated_at >= ended_before))
        .order_by(D.c.id)
        .with_for_update()
    )
    for watch_id in set(kept.scalars()):
        del found[watch_id]
    if not found:
        return 0
    ids = list(found)
    gone = select(D.c.id).where(D.c.watch_id.in_(ids)).scalar_subquery()
    await conn.execute(delete(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(gone)))
    await conn.execute(delete(D).where(D.c.watch_id.in_(ids)))
    await conn.execute(delete(events).where(events.c.watch_id.in_(ids)))
    await conn.execute(delete(W).where(W.c.id.in_(ids)))
    await _prune_jobs(conn, sorted(set(found.values())), now=now)
    return len(ids)


async def _prune_jobs(
    conn: AsyncConnection, keys: Sequence[tuple[str, str]], *, now: datetime
) -> None:
    """Delete the job rows no watch refers to and nothing polls (a watch registered meanwhile sets
    next_poll_at, which PostgreSQL re-checks on the row it waited for). One key per statement:
    with the whole key equal, SQLite looks the row up by its primary key."""
    referenced = select(W.c.id).where(W.c.account == J.c.account, W.c.job_id == J.c.job_id).exists()
    await conn.execute(
        delete(J)
        .where(J.c.account == bindparam("b_account"), J.c.job_id == bindparam("b_job_id"))
        .where(J.c.next_poll_at.is_(None))
        .where(or_(J.c.lease_expires_at.is_(None), J.c.lease_expires_at < now))
        .where(~referenced),
        [{"b_account": account, "b_job_id": job_id} for account, job_id in keys],
    )


async def prune_imports(
    conn: AsyncConnection, *, ended_before: datetime, now: datetime, limit: int
) -> int:
    """Delete up to `limit` ended imports old enough to go, with their events, deliveries,
    attempts and failures; oldest first."""
    kept_by_watch = (
        select(W.c.id)
        .where(W.c.import_id == I.c.id)
        .where(or_(W.c.status == "active", W.c.ended_at.is_(None), W.c.ended_at >= ended_before))
        .exists()
    )
    candidates = await conn.execute(
        select(I.c.id)
        .where(I.c.status.in_(IMPORT_FINAL), I.c.ended_at < ended_before, ~kept_by_watch)
        .order_by(I.c.ended_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    found = set(candidates.scalars())
    if not found:
        return 0
    # An import's own events are stored under its id in `watch_id`, as a watch's are.
    kept = await conn.execute(
        select(D.c.watch_id)
        .where(D.c.watch_id.in_(list(found)))
        .where(or_(D.c.status == "pending", D.c.updated_at >= ended_before))
        .order_by(D.c.id)
        .with_for_update()
    )
    found -= set(kept.scalars())
    if not found:
        return 0
    ids = sorted(found)
    gone = select(D.c.id).where(D.c.watch_id.in_(ids)).scalar_subquery()
    await conn.execute(delete(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(gone)))
    await conn.execute(delete(D).where(D.c.watch_id.in_(ids)))
    await conn.execute(delete(events).where(events.c.watch_id.in_(ids)))
    await conn.execute(delete(import_failures).where(import_failures.c.import_id.in_(ids)))
    await conn.execute(delete(I).where(I.c.id.in_(ids)))
    return len(ids)


_PRUNERS: tuple[Pruner, ...] = (prune_watches, prune_imports)
