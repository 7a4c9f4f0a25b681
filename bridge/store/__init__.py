"""The only place that knows SQL: `open_store(url)` returns a migrated `Store`."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.channel_state import StateQueries
from bridge.store.engine import create_engine, migrate
from bridge.store.jobqueue import JobQueries
from bridge.store.outbox import OutboxQueries
from bridge.store.records import DeliveryRecord, EventRecord, WatchRecord
from bridge.store.retry import RetryQueries
from bridge.store.watches import WatchQueries

__all__ = ["DeliveryRecord", "EventRecord", "Store", "WatchRecord", "open_store"]


class Store(WatchQueries, JobQueries, OutboxQueries, RetryQueries, StateQueries):
    """Every query the bridge makes: writes on `engine`, plain reads on `reader`."""

    def __init__(self, engine: AsyncEngine, reader: AsyncEngine | None = None) -> None:
        self.engine = engine
        self.reader = reader or engine  # SQLite: a pool of readers beside the one writer
        self.dialect = engine.dialect.name

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.reader.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()


async def open_store(url: str, *, run_migrations: bool = True) -> Store:
    """Connect to the database at `url` and bring its schema up to date."""
    engine = create_engine(url)
    if run_migrations:
        await migrate(engine)
    reader = create_engine(url, readers=4) if engine.dialect.name == "sqlite" else None
    return Store(engine, reader)
