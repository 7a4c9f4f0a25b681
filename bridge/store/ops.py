"""What operators read across the store (deliveries of every watch, channel health, account budgets)
and the bulk redelivery of dead deliveries.

Every deliveries query here walks `ix_deliveries_destination` (destination, status, id): a listing
is one range per (destination, status) merged in id order, so no page sorts a whole table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.claims import HOUR
from bridge.store.database import Repository
from bridge.store.outbox import STILL_WANTED, redelivery
from bridge.store.records import DELIVERY_STATUSES, DeliveryRecord
from bridge.store.tables import account_budgets, deliveries, poll_log, watches
from bridge.store.watches import delivery_record

D = deliveries
RETRY_BATCH = 500  # dead deliveries reset per transaction


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """An account's poll budget as the job queue counts it, and the jobs it is polling."""

    account: str
    polls_last_hour: int  # poll_log rows in the rolling hour the claim counts
    remaining: int | None  # the upstream's X-RateLimit-Remaining, counted down locally
    reset_at: datetime | None
    paused_until: datetime | None
    active_jobs: int  # upstream jobs with at least one active watch

    def remaining_at(self, now: datetime) -> int | None:
        """The upstream's remaining count as the poller heeds it at `now` (None once reset)."""
        return self.remaining if self.reset_at is not None and self.reset_at > now else None

    def paused_at(self, now: datetime) -> datetime | None:
        """Until when the account is paused at `now` (None when a pause has passed)."""
        return (
            self.paused_until if self.paused_until is not None and self.paused_until > now else None
        )


@dataclass(frozen=True, slots=True)
class ChannelFigures:
    """One destination's backlog and how its latest deliveries went."""

    destination: str
    pending: int
    dead: int
    last_delivered_at: datetime | None
    last_error: str | None  # of the latest failed delivery still pending or dead
    last_error_at: datetime | None


async def _destinations(conn: AsyncConnection) -> list[str]:
    """Every destination that has deliveries, one index seek each (a loose index scan)."""
    names: list[str] = []
    while True:
        query = select(func.min(D.c.destination))
        if names:
            query = query.where(D.c.destination > names[-1])
        found = (await conn.execute(query)).scalar()
        if found is None:
            return names
        names.append(found)


class OperatorQueries(Repository):
    """The operator API's reads over every client's deliveries and budgets, and bulk redelivery."""

    async def deliveries_page(
        self, *, status: str | None, destination: str | None, limit: int, cursor: str | None
    ) -> tuple[list[DeliveryRecord], str | None]:
        """A page of deliveries, newest first, filtered by status and destination; returns (page,
        next cursor)."""
        async with self.reader.connect() as conn:
            if status is None and destination is None:
                ranges = [select(D)]
            else:
                names = [destination] if destination else await _destinations(conn)
                statuses = [status] if status else list(DELIVERY_STATUSES)
                ranges = [
                    select(D).where(D.c.destination == name, D.c.status == s)
                    for name in names
                    for s in statuses
                ]
            rows: list[DeliveryRecord] = []
            for query in ranges:
                if cursor is not None:
                    query = query.where(D.c.id < cursor)
                found = await conn.execute(query.order_by(D.c.id.desc()).limit(limit + 1))
                rows += [delivery_record(r) for r in found]
        rows.sort(key=lambda r: r.id, reverse=True)
        page = rows[:limit]
        return page, (page[-1].id if len(rows) > limit else None)

    async def retry_dead(
        self,
        *,
        destination: str | None,
        since: datetime | None,
        now: datetime,
        batch: int = RETRY_BATCH,
    ) -> int:
        """Send every dead delivery (to `destination`, created at or after `since`) again, in id
        order, `batch` rows per transaction; a cancelled watch's own webhook deliveries stay dead. Returns how
        many went back to pending."""
        async with self.reader.connect() as conn:
            names = [destination] if destination else await _destinations(conn)
        total = 0
        for name in names:
            after: str | None = None
            while True:
                reset, after = await self._retry_batch(
                    destination=name, since=since, after=after, now=now, batch=batch
                )
                total += reset
                if after is None:
                    break
        return total

    async def _retry_batch(
        self,
        *,
        destination: str,
        since: datetime | None,
        after: str | None,
        now: datetime,
        batch: int,
    ) -> tuple[int, str | None]:
        """Reset the next `batch` dead deliveries after id `after`; returns (reset, where to go on
        from, or None when done)."""
        query = (
            select(D.c.id)
            .select_from(D.outerjoin(watches, watches.c.id == D.c.watch_id))
            .where(D.c.destination == destination, D.c.status == "dead")
            .where(STILL_WANTED)
        )
        if since is not None:
            query = query.where(D.c.created_at >= since)
        if after is not None:
            query = query.where(D.c.id > after)
        async with self.engine.begin() as conn:
            ids = list((await conn.execute(query.order_by(D.c.id).limit(batch))).scalars())
            if not ids:
                return 0, None
            result = await conn.execute(
                update(D).where(D.c.id.in_(ids), D.c.status == "dead").values(**redelivery(now))
            )
        return result.rowcount, (ids[-1] if len(ids) == batch else None)

    async def accounts(self, names: Sequence[str], *, now: datetime) -> list[AccountFigures]:
        """Each named account's polls in the rolling hour, stored budget and watched jobs."""
        accounts = list(names)
        async with self.reader.connect() as conn:
            polls = await self._counts(
                conn,
                select(poll_log.c.account, func.count())
                .where(poll_log.c.account.in_(accounts), poll_log.c.at > now - HOUR)
                .group_by(poll_log.c.account),
            )
            jobs = await self._counts(
                conn,
                select(watches.c.account, func.count(watches.c.job_id.distinct()))
                .where(watches.c.account.in_(accounts), watches.c.status == "active")
                .group_by(watches.c.account),
            )
            budgets = {
                r.account: r
                for r in await conn.execute(
                    select(account_budgets).where(account_budgets.c.account.in_(accounts))
                )
            }
        return [
            AccountFigures(
                account=name,
                polls_last_hour=polls.get(name, 0),
                remaining=getattr(budgets.get(name), "remaining", None),
                reset_at=getattr(budgets.get(name), "reset_at", None),
                paused_until=getattr(budgets.get(name), "paused_until", None),
                active_jobs=jobs.get(name, 0),
            )
            for name in accounts
        ]

    @staticmethod
    async def _counts(conn: AsyncConnection, query: Any) -> dict[str, int]:
        return {key: int(n) for key, n in await conn.execute(query)}

    async def channels(self, names: Sequence[str]) -> list[ChannelFigures]:
        """Each named destination's pending and dead deliveries, latest delivery and latest error."""
        async with self.reader.connect() as conn:
            return [await self._channel(conn, name) for name in names]

    async def _channel(self, conn: AsyncConnection, name: str) -> ChannelFigures:
        counts = {
            status: int(n)
            for status, n in await conn.execute(
                select(D.c.status, func.count())
                .where(D.c.destination == name, D.c.status.in_(("pending", "dead")))
                .group_by(D.c.status)
            )
        }
        delivered = await conn.execute(
            select(func.max(D.c.delivered_at)).where(D.c.destination == name)
        )
        # The newest failed delivery of each status, walking ix_deliveries_destination backwards
        # (no sort of the whole backlog), then the later of the two.
        errors = [
            (
                await conn.execute(
                    select(D.c.last_error, D.c.updated_at)
                    .where(D.c.destination == name, D.c.status == status)
                    .where(D.c.last_error.is_not(None))
                    .order_by(D.c.id.desc())
                    .limit(1)
                )
            ).first()
            for status in ("pending", "dead")
        ]
        found = [e for e in errors if e is not None]
        error = max(found, key=lambda e: e.updated_at) if found else None
        return ChannelFigures(
            destination=name,
            pending=counts.get("pending", 0),
            dead=counts.get("dead", 0),
            last_delivered_at=delivered.scalar(),
            last_error=error.last_error if error else None,
            last_error_at=error.updated_at if error else None,
        )
