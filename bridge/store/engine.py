"""open_store(url): the async engine for SQLite or PostgreSQL, migrated to the current schema."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bridge.store.faults import StorageFault

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 72_941_001  # any constant: serialises replicas migrating one PostgreSQL at start
MIN_FREE_BYTES = 1 << 20  # less free space than this on SQLite's disk counts as full


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


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite storage URL names; None for PostgreSQL or an in-memory database."""
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def _free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    blocks = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail  # root may use reserved blocks
    return blocks * stats.f_frsize


def sqlite_fault(path: Path) -> StorageFault | None:
    """Why SQLite cannot write the database at `path` now, naming the path, or None.

    SQLite writes its -wal and -shm files beside the database, so the folder must be writable too.
    os.access asks the kernel, so it honours root, immutable files and read-only mounts alike.
    """
    folder = path.parent
    if not folder.is_dir():
        return StorageFault("cannot open", f"the SQLite database's folder {folder} does not exist")
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and not os.access(file, os.R_OK | os.W_OK):
            return StorageFault("read-only", f"the SQLite file {file} is read-only")
    if not os.access(folder, os.W_OK | os.X_OK):
        return StorageFault(
            "read-only",
            f"the folder {folder} of the SQLite database {path} is read-only "
            "(SQLite writes its -wal and -shm files there)",
        )
    free = _free_bytes(folder)
    if free < MIN_FREE_BYTES:
        return StorageFault(
            "disk full", f"the disk holding the SQLite database {path} is full ({free} bytes free)"
        )
    return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns (a job's snapshot above all, read back by every poll) go through orjson: decoding a
# stored snapshot with the json module was a tenth of a poll's CPU on PostgreSQL.
_JSON = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def create_engine(url: str, *, readers: int = 0) -> AsyncEngine:
    """Build the engine. SQLite gets WAL and one writing connection, so writes never race
    in-process; `readers` > 0 builds a pool of that many connections for reads only (WAL lets them
    read while the writer writes)."""
    real = async_url(url)
    if real.startswith("sqlite"):
        size = readers or 1
        engine = create_async_engine(real, pool_size=size, max_overflow=0, pool_timeout=60, **_JSON)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(real, pool_size=10, max_overflow=10, **_JSON)
    _ping_when_idle(engine.sync_engine)
    return engine


IDLE_PING_S = 1.0  # a pooled connection idle longer than this is pinged before it is used


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle over IDLE_PING_S: one that was in
    use a moment ago is alive, and `pool_pre_ping`'s round trip on every checkout was a tenth of a
    delivery drain's time. A ping that fails makes the pool drop that connection and every older
    one, and take a fresh one (a server restarted meanwhile), as `pool_pre_ping` does; a
    connection used within the second before a restart fails on use like any lost connection
    (the pool is then renewed, and the outbox's record retries once: `Outbox.record_attempts`)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")  # none on a fresh connection: no ping needed
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise InvalidatePoolError("the pooled connection did not answer a ping") from exc


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
