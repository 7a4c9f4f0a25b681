"""Watch queries: register, read, page through and cancel watches; list their events and deliveries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.events.import_events import ImportEventPlanner
from bridge.ids import new_id
from bridge.store.database import Repository
from bridge.store.import_writes import fold_cancelled_watch
from bridge.store.records import DeliveryRecord, EventRecord, WatchRecord
from bridge.store.tables import deliveries, events, upstream_jobs, watches
from bridge.store.upsert import insert_for

_LIMIT_LOCK_SPACE = 72_941  # advisory lock space of the per-client watch limit (PostgreSQL)
_WATCH_COLUMNS = [
    *watches.c,
    upstream_jobs.c.snapshot,
    upstream_jobs.c.last_polled_at,
    upstream_jobs.c.next_poll_at,
]
_JOIN = watches.outerjoin(
    upstream_jobs,
    and_(upstream_jobs.c.account == watches.c.account, upstream_jobs.c.job_id == watches.c.job_id),
)


def _watch(row: Row[Any]) -> WatchRecord:
    return watch_record(dict(row._mapping))


def watch_record(m: Mapping[str, Any]) -> WatchRecord:
    """Build a WatchRecord from watch columns plus the job's snapshot, last_polled_at, next_poll_at."""
    return WatchRecord(
        id=m["id"],
        client=m["client"],
        account=m["account"],
        job_id=m["job_id"],
        status=m["status"],
        webhook_url=m["webhook_url"],
        events=tuple(m["events"]),
        metadata=dict(m["metadata"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        expires_at=m["expires_at"],
        last_sequence=m["last_sequence"],
        first_polled_at=m["first_polled_at"],
        error_code=m["error_code"],
        error_message=m["error_message"],
        job=m["snapshot"],
        last_polled_at=m["last_polled_at"],
        next_poll_at=m["next_poll_at"] if m["status"] == "active" else None,
        import_id=m.get("import_id"),
        counted=m.get("counted"),
    )


def delivery_record(row: Row[Any]) -> DeliveryRecord:
    """Build a DeliveryRecord from a `deliveries` row."""
    m = row._mapping
    return DeliveryRecord(**{name: m[name] for name in DeliveryRecord.__slots__})


async def schedule_first_poll(
    conn: AsyncConnection, dialect: str, *, account: str, job_id: str, now: datetime
) -> None:
    """Make the job due now and first in line: a new watch learns its job's state quickly."""
    stmt = insert_for(dialect, upstream_jobs).values(
        account=account,
        job_id=job_id,
        final=False,
        next_poll_at=now,
        interval_s=0.0,
        priority=1,
        not_found_count=0,
        error_count=0,
        failure_count=0,
        created_at=now,
        updated_at=now,
    )
    table = stmt.excluded
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["account", "job_id"],
            set_={
                "priority": 1,
                "final": False,
                # A new watch gets its own retries: earlier 404s and errors are forgotten.
                "not_found_count": 0,
                "first_not_found_at": None,
                "error_count": 0,
                "failure_count": 0,
                "next_poll_at": func.coalesce(
                    func.min(upstream_jobs.c.next_poll_at, table.next_poll_at)
                    if dialect == "sqlite"
                    else func.least(upstream_jobs.c.next_poll_at, table.next_poll_at),
                    table.next_poll_at,
                ),
                "updated_at": table.updated_at,
            },
        )
    )


class WatchLimitReached(Exception):
    """The client already has as many active watches as it may have."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the client already has {limit} active watches")
        self.limit = limit


class Watches(Repository):
    """Watches: register, read, page through and cancel them; their events and deliveries."""

    async def _select_watch(self, conn: AsyncConnection, *conditions: Any) -> WatchRecord | None:
        row = (
            await conn.execute(select(*_WATCH_COLUMNS).select_from(_JOIN).where(*conditions))
        ).first()
        return _watch(row) if row else None

    async def create(
        self,
        *,
        client: str,
        account: str,
        job_id: str,
        webhook_url: str | None,
        events: Sequence[str],
        metadata: dict[str, str],
        idempotency_key: str | None,
        now: datetime,
        ttl: timedelta,
        max_active: int | None = None,
    ) -> tuple[WatchRecord, bool]:
        """Register a watch and schedule its job to be polled first; returns (watch, created).

        Raises WatchLimitReached when the client already has `max_active` active watches.
        """
        if idempotency_key is not None:
            existing = await self._watch_by_key(client, idempotency_key)
            if existing:
                return existing, False
        watch_id = new_id("wat")
        try:
            async with self.engine.begin() as conn:
                if max_active is not None:
                    await self.check_limit(conn, client=client, limit=max_active)
                await conn.execute(
                    watches.insert().values(
                        id=watch_id,
                        client=client,
                        account=account,
                        job_id=job_id,
                        status="active",
                        webhook_url=webhook_url,
                        events=list(events),
                        metadata=metadata,
                        idempotency_key=idempotency_key,
                        last_sequence=0,
                        created_at=now,
                        updated_at=now,
                        expires_at=now + ttl,
                    )
                )
                await schedule_first_poll(
                    conn, self.dialect, account=account, job_id=job_id, now=now
                )
                created = await self._select_watch(conn, watches.c.id == watch_id)
        except IntegrityError:
            # Two requests with one Idempotency-Key raced; the other one's watch is the answer.
            existing = await self._watch_by_key(client, idempotency_key or "")
            if existing is None:
                raise
            return existing, False
        assert created is not None
        return created, True

    async def check_limit(
        self, conn: AsyncConnection, *, client: str, limit: int, adding: int = 1
    ) -> None:
        """Raise WatchLimitReached unless the client has room for `adding` more active watches
        (counted on an index, at most `limit` rows). PostgreSQL: the client's registrations take
        turns, so two at once cannot both take the last place; SQLite has one writer."""
        if self.dialect == "postgresql":
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:space, hashtext(:client))"),
                {"space": _LIMIT_LOCK_SPACE, "client": client},
            )
        active = (
            select(watches.c.id)
            .where(watches.c.client == client, watches.c.status == "active")
            .limit(limit)
            .subquery()
        )
        if (await conn.scalar(select(func.count()).select_from(active)) or 0) + adding > limit:
            raise WatchLimitReached(limit)

    async def _watch_by_key(self, client: str, key: str) -> WatchRecord | None:
        async with self.engine.connect() as conn:
            return await self._select_watch(
                conn, watches.c.client == client, watches.c.idempotency_key == key
            )

    async def get(self, *, watch_id: str, client: str | None = None) -> WatchRecord | None:
        """One watch; with `client`, only that client's (another client's watch does not exist)."""
        conditions = [watches.c.id == watch_id]
        if client is not None:
            conditions.append(watches.c.client == client)
        async with self.reader.connect() as conn:
            return await self._select_watch(conn, *conditions)

    async def get_many(self, ids: Sequence[str]) -> dict[str, WatchRecord]:
        """The watches with these ids that exist."""
        if not ids:
            return {}
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(*_WATCH_COLUMNS).select_from(_JOIN).where(watches.c.id.in_(list(ids)))
            )
            return {r.id: _watch(r) for r in rows}

    async def of_job(
        self, job_id: str, *, accounts: Sequence[str], limit: int
    ) -> list[WatchRecord]:
        """The watches of one upstream job id on any of `accounts`, oldest first (the Slack app's
        status); naming the accounts lets the (account, job_id) index find them."""
        query = (
            select(*_WATCH_COLUMNS)
            .select_from(_JOIN)
            .where(watches.c.account.in_(list(accounts)), watches.c.job_id == job_id)
        )
        async with self.reader.connect() as conn:
            rows = await conn.execute(query.order_by(watches.c.id).limit(limit))
            return [_watch(r) for r in rows]

    async def page(
        self, *, client: str | None, status: str | None, limit: int, cursor: str | None
    ) -> tuple[list[WatchRecord], str | None]:
        """A page of the client's watches (every client's when None), newest first; returns
        (page, next cursor)."""
        query = select(*_WATCH_COLUMNS).select_from(_JOIN)
        if client is not None:
            query = query.where(watches.c.client == client)
        if status:
            query = query.where(watches.c.status == status)
        if cursor:
            query = query.where(watches.c.id < cursor)
        query = query.order_by(watches.c.id.desc()).limit(limit + 1)
        async with self.reader.connect() as conn:
            rows = [_watch(r) for r in await conn.execute(query)]
        page = rows[:limit]
        return page, (page[-1].id if len(rows) > limit else None)

    async def cancel(
        self,
        *,
        client: str,
        watch_id: str,
        now: datetime,
        planner: ImportEventPlanner | None = None,
    ) -> WatchRecord | None:
        """Cancel an active watch: nothing more is polled or sent for it; a watch in an import is
        folded into the import's roll-up (with `planner`'s events). Ended watches stay as they are."""
        async with self.engine.begin() as conn:
            found = await self._select_watch(
                conn, watches.c.id == watch_id, watches.c.client == client
            )
            if found is None:
                return None
            # Lock the job before the watch, in the order the poller's writes take them
            # (job, then its watches): the reverse order deadlocks on PostgreSQL.
            await conn.execute(
                select(upstream_jobs.c.job_id)
                .where(upstream_jobs.c.account == found.account)
                .where(upstream_jobs.c.job_id == found.job_id)
                .with_for_update()
            )
            result = await conn.execute(
                update(watches)
                .where(watches.c.id == watch_id, watches.c.client == client)
                .where(watches.c.status == "active")
                .values(status="cancelled", updated_at=now, ended_at=now)
            )
            watch = await self._select_watch(
                conn, watches.c.id == watch_id, watches.c.client == client
            )
            if result.rowcount and watch is not None:
                # Lock the pending deliveries in id order, as record_attempts updates them.
                # Only the watch's own webhook: configured channels are about the job.
                own_pending = (
                    deliveries.c.watch_id == watch_id,
                    deliveries.c.status == "pending",
                    deliveries.c.change_key.is_(None),
                )
                await conn.execute(
                    select(deliveries.c.id)
                    .where(*own_pending)
                    .order_by(deliveries.c.id)
                    .with_for_update()
                )
                await conn.execute(
                    update(deliveries)
                    .where(*own_pending)
                    .values(status="dead", last_error="watch cancelled", updated_at=now)
                )
                await self.stop_if_unwatched(conn, account=watch.account, job_id=watch.job_id)
                if watch.import_id is not None:
                    if planner is None:
                        raise ValueError("cancelling a watch of an import needs a planner")
                    watch = await fold_cancelled_watch(conn, watch, planner=planner, now=now)
            return watch

    @staticmethod
    async def stop_if_unwatched(conn: AsyncConnection, *, account: str, job_id: str) -> None:
        """Stop polling a job that no active watch wants any more."""
        still_watched = (
            select(watches.c.id)
            .where(watches.c.account == account, watches.c.job_id == job_id)
            .where(watches.c.status == "active")
            .exists()
        )
        await conn.execute(
            update(upstream_jobs)
            .where(upstream_jobs.c.account == account, upstream_jobs.c.job_id == job_id)
            .where(~still_watched)
            .values(next_poll_at=None)
        )

    async def events(self, *, watch_id: str) -> list[EventRecord]:
        """Every event of the watch in sequence order."""
        query = select(events).where(events.c.watch_id == watch_id).order_by(events.c.sequence)
        async with self.reader.connect() as conn:
            return [
                EventRecord(**{name: r._mapping[name] for name in EventRecord.__slots__})
                for r in await conn.execute(query)
            ]

    async def deliveries(
        self, *, watch_id: str, destination: str | None = None
    ) -> list[DeliveryRecord]:
        """The deliveries of the watch's events (only those to `destination`, when given), in
        event order, then by destination."""
        query = (
            select(deliveries)
            .where(deliveries.c.watch_id == watch_id)
            .order_by(deliveries.c.sequence, deliveries.c.destination)
        )
        if destination is not None:
            query = query.where(deliveries.c.destination == destination)
        async with self.reader.connect() as conn:
            return [delivery_record(r) for r in await conn.execute(query)]
