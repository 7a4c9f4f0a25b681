"""The only place that knows SQL: `open_store(url)` returns a migrated `Store` of repositories."""

from __future__ import annotations

from bridge.store.channel_state import ChannelState
from bridge.store.database import Database
from bridge.store.discovery import Discovery
from bridge.store.engine import create_engine, migrate
from bridge.store.imports import Imports
from bridge.store.jobqueue import JobQueue
from bridge.store.ops import OperatorQueries
from bridge.store.outbox import Outbox
from bridge.store.records import DeliveryRecord, EventRecord, WatchRecord
from bridge.store.retention import Retention
from bridge.store.subscriptions import Subscriptions
from bridge.store.watches import Watches, WatchLimitReached

__all__ = [
    "DeliveryRecord",
    "EventRecord",
    "Store",
    "WatchLimitReached",
    "WatchRecord",
    "open_store",
]


class Store:
    """The repositories over one database: watches, the job queue, the outbox, channel state, and
    the operators' queries across them, and retention, which deletes what ended long ago."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.watches = Watches(db)
        self.imports = Imports(db)
        self.jobs = JobQueue(db)
        self.outbox = Outbox(db)
        self.channel_state = ChannelState(db)
        self.ops = OperatorQueries(db)
        self.retention = Retention(db)
        self.subscriptions = Subscriptions(db)
        self.discovery = Discovery(db)

    async def ping(self) -> None:
        """Raise unless storage takes a write now (the readiness check)."""
        await self.db.ping()

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.db.close()


async def open_store(url: str, *, run_migrations: bool = True) -> Store:
    """Connect to the database at `url` and bring its schema up to date."""
    engine = create_engine(url)
    if run_migrations:
        await migrate(engine)
    reader = create_engine(url, readers=4) if engine.dialect.name == "sqlite" else None
    return Store(Database(engine, reader))
