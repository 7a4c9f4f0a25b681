"""Import queries: create, read, page, add jobs, close, cancel, find stalls; list failures.

Every write that changes an import's roll-up locks its row last (after any job and watch rows, the
order the poller takes them in), folds the change in and records the import events it makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.events.import_events import ImportEventPlanner
from bridge.events.import_view import ImportRecord
from bridge.events.rollup import Contribution, Tally, cancel, close, fold, stall
from bridge.ids import new_id
from bridge.store.import_joins import fold_new, insert_watches
from bridge.store.import_reads import FailureRecord, ImportClosed, ImportNotFound, ImportReads
from bridge.store.import_writes import (
    import_record,
    lock_imports,
    tally_columns,
    write_import_events,
    write_imports,
)
from bridge.store.records import WatchRecord
from bridge.store.tables import deliveries, imports, upstream_jobs, watches
from bridge.store.watches import Watches, WatchLimitReached

I, W = imports, watches  # noqa: E741


class Imports(ImportReads):
    """Imports: their rows, their jobs (watches with the import's id) and their failures."""

    async def create(
        self,
        *,
        client: str,
        account: str,
        name: str,
        webhook_url: str | None,
        events: Sequence[str],
        metadata: dict[str, str],
        expected_jobs: int | None,
        idempotency_key: str | None,
        now: datetime,
    ) -> tuple[ImportRecord, bool]:
        """Create an open import; returns (import, created). One Idempotency-Key, one import."""
        if idempotency_key is not None:
            existing = await self._by_key(client, idempotency_key)
            if existing is not None:
                return existing, False
        import_id = new_id("imp")
        values = {
            "id": import_id,
            "client": client,
            "account": account,
            "name": name,
            "webhook_url": webhook_url,
            "events": list(events),
            "metadata": metadata,
            "idempotency_key": idempotency_key,
            "last_sequence": 0,
            **tally_columns(Tally(expected_jobs=expected_jobs)),
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(I.insert().values(**values))
        except IntegrityError:
            existing = await self._by_key(client, idempotency_key or "")
            if existing is None:
                raise
            return existing, False
        record = await self.get(import_id=import_id)
        assert record is not None
        return record, True

    async def add_jobs(
        self,
        *,
        import_id: str,
        client: str,
        job_ids: Sequence[str],
        metadata: dict[str, str],
        now: datetime,
        ttl: timedelta,
        planner: ImportEventPlanner,
        max_active: int | None = None,
    ) -> list[WatchRecord]:
        """One watch per job in the import (a job already in it keeps its watch), in the order
        given. Raises ImportNotFound, ImportClosed or WatchLimitReached."""
        try:
            return await self._add_jobs(
                import_id=import_id, client=client, job_ids=job_ids, metadata=metadata,
                now=now, ttl=ttl, planner=planner, max_active=max_active,
            )  # fmt: skip
        except IntegrityError:
            # Another request added one of these jobs at the same moment: its watch is the answer.
            return await self._add_jobs(
                import_id=import_id, client=client, job_ids=job_ids, metadata=metadata,
                now=now, ttl=ttl, planner=planner, max_active=max_active,
            )  # fmt: skip

    async def _add_jobs(
        self,
        *,
        import_id: str,
        client: str,
        job_ids: Sequence[str],
        metadata: dict[str, str],
        now: datetime,
        ttl: timedelta,
        planner: ImportEventPlanner,
        max_active: int | None,
    ) -> list[WatchRecord]:
        wanted = list(dict.fromkeys(job_ids))
        async with self.engine.begin() as conn:
            record = await self._owned(conn, import_id, client)
            existing = await self._watch_ids(conn, import_id, wanted)
            new = [j for j in wanted if j not in existing]
            if new:
                if record.tally.closed:
                    raise ImportClosed(import_id)
                if max_active is not None:
                    await Watches(self._db).check_limit(
                        conn, client=client, limit=max_active, adding=len(new)
                    )
                created, joined = await insert_watches(
                    conn, self.dialect, record, new, metadata, now, ttl
                )
                existing.update(created)
                locked = (await lock_imports(conn, [import_id]))[import_id]
                if locked.tally.closed:  # closed while we inserted: roll all of it back
                    raise ImportClosed(import_id)
                await fold_new(conn, locked, joined, planner=planner, now=now)
        found = await Watches(self._db).get_many([existing[j] for j in wanted])
        return [found[existing[j]] for j in wanted]

    async def _owned(self, conn: AsyncConnection, import_id: str, client: str) -> ImportRecord:
        row = (
            await conn.execute(select(I).where(I.c.id == import_id, I.c.client == client))
        ).first()
        if row is None:
            raise ImportNotFound(import_id)
        return import_record(row._mapping)

    async def _watch_ids(
        self, conn: AsyncConnection, import_id: str, job_ids: Sequence[str]
    ) -> dict[str, str]:
        rows = await conn.execute(
            select(W.c.job_id, W.c.id).where(W.c.import_id == import_id, W.c.job_id.in_(job_ids))
        )
        return {r.job_id: r.id for r in rows}

    async def close(
        self, *, import_id: str, client: str | None, now: datetime, planner: ImportEventPlanner
    ) -> ImportRecord:
        """No more jobs will come; an import whose jobs have all ended ends now. Raises
        ImportNotFound."""
        async with self.engine.begin() as conn:
            await self._check(conn, import_id, client)
            record = (await lock_imports(conn, [import_id]))[import_id]
            tally, types = close(record.tally, now=now)
            if tally != record.tally:
                after, planned = planner.plan(record, tally, types, now=now)
                await write_imports(conn, [after], now=now)
                await write_import_events(conn, planned, now=now)
        found = await self.get(import_id=import_id)
        assert found is not None
        return found

    async def _check(self, conn: AsyncConnection, import_id: str, client: str | None) -> None:
        query = select(I.c.id).where(I.c.id == import_id)
        if client is not None:
            query = query.where(I.c.client == client)
        if (await conn.execute(query)).first() is None:
            raise ImportNotFound(import_id)

    async def cancel(
        self, *, import_id: str, client: str | None, now: datetime, planner: ImportEventPlanner
    ) -> ImportRecord:
        """Cancel the import and its active watches (nothing more is polled or sent for them);
        an ended import stays as it is. Raises ImportNotFound."""
        async with self.engine.begin() as conn:
            await self._check(conn, import_id, client)
            active = await conn.execute(
                select(W.c.account, W.c.job_id)
                .where(W.c.import_id == import_id, W.c.status == "active")
                .order_by(W.c.account, W.c.job_id)
            )
            keys = [(r.account, r.job_id) for r in active]
            for account, job_id in keys:  # jobs, then watches, then the import: the poller's order
                await conn.execute(
                    select(upstream_jobs.c.job_id)
                    .where(upstream_jobs.c.account == account, upstream_jobs.c.job_id == job_id)
                    .with_for_update()
                )
            record, folded = await self._cancel_watches(conn, import_id, now=now)
            tally, types = cancel(record.tally, now=now)
            if folded or types:  # an ended import stays as it is, updated_at too
                after, planned = planner.plan(record, tally, types, now=now)
                await write_imports(conn, [after], now=now)
                await write_import_events(conn, planned, now=now)
            for account, job_id in keys:
                await Watches.stop_if_unwatched(conn, account=account, job_id=job_id)
        found = await self.get(import_id=import_id)
        assert found is not None
        return found

    async def _cancel_watches(
        self, conn: AsyncConnection, import_id: str, *, now: datetime
    ) -> tuple[ImportRecord, bool]:
        """Cancel the import's active watches, folding each into the import; the import, locked,
        and whether any watch was cancelled."""
        rows = await conn.execute(
            select(W.c.id, W.c.counted)
            .where(W.c.import_id == import_id, W.c.status == "active")
            .order_by(W.c.id)
            .with_for_update()
        )
        cancelled = [(r.id, Contribution.from_dict(r.counted) or Contribution()) for r in rows]
        record = (await lock_imports(conn, [import_id]))[import_id]
        if not cancelled:
            return record, False
        ids = [watch_id for watch_id, _ in cancelled]
        await conn.execute(
            update(W)
            .where(W.c.id.in_(ids))
            .values(status="cancelled", updated_at=now, ended_at=now)
        )
        own = (
            deliveries.c.watch_id.in_(ids),
            deliveries.c.status == "pending",
            deliveries.c.change_key.is_(None),
        )
        await conn.execute(
            update(deliveries)
            .where(*own)
            .values(status="dead", last_error="import cancelled", updated_at=now)
        )
        tally = record.tally
        for _, old in cancelled:
            tally = fold(tally, old, old.cancelled(), now=now)
        # `counted` of each cancelled watch is its last contribution with state cancelled.
        for watch_id, old in cancelled:
            await conn.execute(
                update(W).where(W.c.id == watch_id).values(counted=old.cancelled().to_dict())
            )
        return replace(record, tally=tally), True

    async def stall_due(
        self,
        *,
        now: datetime,
        stall_after: timedelta,
        planner: ImportEventPlanner,
        limit: int = 100,
    ) -> int:
        """Mark running imports that finished no image for `stall_after` as stalled, with
        `import.stalled`; returns how many."""
        cutoff = now - stall_after
        query = (
            select(I.c.id)
            .where(I.c.status == "running", I.c.stalled.is_(False), I.c.jobs_active > 0)
            .where(func.coalesce(I.c.last_finished_at, I.c.started_at) <= cutoff)
            .order_by(I.c.id)
            .limit(limit)
        )
        async with self.engine.begin() as conn:
            ids = [r.id for r in await conn.execute(query)]
            if not ids:
                return 0
            updated, planned = [], []
            for record in (await lock_imports(conn, ids)).values():
                tally, types = stall(record.tally, now=now, stall_after=stall_after)
                if types:
                    after, made = planner.plan(record, tally, types, now=now)
                    updated.append(after)
                    planned += made
            await write_imports(conn, updated, now=now)
            await write_import_events(conn, planned, now=now)
        return len(updated)


__all__ = ["FailureRecord", "ImportClosed", "ImportNotFound", "Imports", "WatchLimitReached"]
