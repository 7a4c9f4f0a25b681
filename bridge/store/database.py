"""Database: the one connection to storage that every repository shares (writer, readers, dialect)."""

from __future__ import annotations

import logging

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.engine import sqlite_fault, sqlite_path
from bridge.store.faults import storage_fault
from bridge.store.tables import storage_probe

log = logging.getLogger(__name__)


class Database:
    """Writes go through `engine`; plain reads through `reader` (SQLite: readers beside one writer)."""

    def __init__(self, engine: AsyncEngine, reader: AsyncEngine | None = None) -> None:
        self.engine = engine
        self.reader = reader or engine
        self.dialect = engine.dialect.name
        url = engine.url.render_as_string(hide_password=True)
        self.sqlite_file = sqlite_path(url)
        # For logs: the SQLite file's path, or the server's URL without its password.
        self.location = str(self.sqlite_file or ":memory:") if self.dialect == "sqlite" else url
        self._fault: str | None = None  # what the last ping found, to log only changes

    async def ping(self) -> None:
        """Raise unless storage takes a write now: the probe row is updated, and on SQLite the
        files, their folder and free space are checked; a change is logged, naming the storage."""
        try:
            if self.sqlite_file is not None and (found := sqlite_fault(self.sqlite_file)):
                raise found
            async with self.engine.begin() as conn:
                done = await conn.execute(
                    update(storage_probe).values(writes=storage_probe.c.writes + 1)
                )
                if not done.rowcount:
                    await conn.execute(insert(storage_probe).values(id=1, writes=1))
        except Exception as exc:
            self._changed(storage_fault(exc) or "unreachable", exc)
            raise
        self._changed(None)

    def _changed(self, fault: str | None, exc: Exception | None = None) -> None:
        if fault == self._fault:
            return
        self._fault = fault
        if fault is None:
            log.info("storage takes writes again", extra={"storage": self.location})
            return
        log.error(
            "storage cannot be written",
            extra={"storage": self.location, "fault": fault, "error": str(exc)[:300]},
        )

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()


class Repository:
    """Base of the repositories: each owns some tables and reaches them through one Database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.engine = db.engine
        self.reader = db.reader
        self.dialect = db.dialect
