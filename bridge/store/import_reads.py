"""Import reads: one import, many, pages of imports and of an import's jobs; its failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bridge.events.import_view import ImportRecord
from bridge.store.database import Repository
from bridge.store.import_writes import import_record
from bridge.store.records import WatchRecord
from bridge.store.tables import import_failures, imports, watches
from bridge.store.watches import Watches

I, W, F = imports, watches, import_failures  # noqa: E741


class ImportNotFound(Exception):
    """No such import, or another client's."""


class ImportClosed(Exception):
    """The import takes no more jobs."""


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """One failed image of an import, ready to resubmit."""

    id: int
    job_id: str
    item_id: str
    external_id: str | None
    error_code: str | None
    error_message: str | None


class ImportReads(Repository):
    """The read side of the imports repository."""

    async def _by_key(self, client: str, key: str) -> ImportRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(I).where(I.c.client == client, I.c.idempotency_key == key)
                )
            ).first()
        return import_record(row._mapping) if row else None

    async def get(self, *, import_id: str, client: str | None = None) -> ImportRecord | None:
        """One import; with `client`, only that client's (another client's does not exist)."""
        query = select(I).where(I.c.id == import_id)
        if client is not None:
            query = query.where(I.c.client == client)
        async with self.reader.connect() as conn:
            row = (await conn.execute(query)).first()
        return import_record(row._mapping) if row else None

    async def get_many(self, ids: Sequence[str]) -> dict[str, ImportRecord]:
        """The imports with these ids that exist."""
        if not ids:
            return {}
        async with self.reader.connect() as conn:
            rows = await conn.execute(select(I).where(I.c.id.in_(sorted(set(ids)))))
            return {r.id: import_record(r._mapping) for r in rows}

    async def page(
        self, *, client: str | None, status: str | None, limit: int, cursor: str | None
    ) -> tuple[list[ImportRecord], str | None]:
        """A page of the client's imports (every client's when None), newest first."""
        query = select(I)
        if client is not None:
            query = query.where(I.c.client == client)
        if status:
            query = query.where(I.c.status == status)
        if cursor:
            query = query.where(I.c.id < cursor)
        query = query.order_by(I.c.id.desc()).limit(limit + 1)
        async with self.reader.connect() as conn:
            rows = [import_record(r._mapping) for r in await conn.execute(query)]
        page = rows[:limit]
        return page, (page[-1].id if len(rows) > limit else None)

    async def jobs(
        self, *, import_id: str, limit: int, cursor: str | None
    ) -> tuple[list[WatchRecord], str | None]:
        """A page of the import's watches in the order they were added."""
        query = select(W.c.id).where(W.c.import_id == import_id)
        if cursor:
            query = query.where(W.c.id > cursor)
        async with self.reader.connect() as conn:
            ids = [r.id for r in await conn.execute(query.order_by(W.c.id).limit(limit + 1))]
        found = await Watches(self._db).get_many(ids[:limit])
        page = [found[i] for i in ids[:limit] if i in found]
        return page, (page[-1].id if len(ids) > limit and page else None)

    async def failures(
        self, *, import_id: str, limit: int, after: int | None = None
    ) -> list[FailureRecord]:
        """A page of the import's failed images in the order they were found."""
        query = select(F).where(F.c.import_id == import_id)
        if after is not None:
            query = query.where(F.c.id > after)
        async with self.reader.connect() as conn:
            rows = await conn.execute(query.order_by(F.c.id).limit(limit))
            return [_failure(r._mapping) for r in rows]

    async def iter_failures(
        self, *, import_id: str, batch: int = 500
    ) -> AsyncIterator[list[FailureRecord]]:
        """Every failed image of the import, a batch at a time (so a CSV streams, never held whole)."""
        after: int | None = None
        while True:
            page = await self.failures(import_id=import_id, limit=batch, after=after)
            if not page:
                return
            yield page
            after = page[-1].id


def _failure(m: Any) -> FailureRecord:
    return FailureRecord(**{name: m[name] for name in FailureRecord.__slots__})
