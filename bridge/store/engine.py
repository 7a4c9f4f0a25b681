"""open_store(url): the async engine for SQLite or PostgreSQL, migrated to the current schema."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 72_941_001  # any constant: serialises replicas migrating one PostgreSQL at start


def async_url(url: str) -> str:
    """Map the operator's URL to the async driver SQLAlchemy needs."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
    if url.startswith("postgresql:"):
        return "postgresql+asyncpg:" + url.removeprefix("postgresql:")
    return url


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_engine(url: str, *, readers: int = 0) -> AsyncEngine:
    """Build the engine. SQLite gets WAL and one writing connection, so writes never race
    in-process; `readers` > 0 builds a pool of that many connections for reads only (WAL lets them
    read while the writer writes)."""
    real = async_url(url)
    if real.startswith("sqlite"):
        size = readers or 1
        engine = create_async_engine(real, pool_size=size, max_overflow=0, pool_timeout=60)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(real, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _upgrade(connection: Connection) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending migration; replicas starting together take turns."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.run_sync(_upgrade)
    log.info("storage migrated", extra={"url": redacted(engine.url.render_as_string())})
