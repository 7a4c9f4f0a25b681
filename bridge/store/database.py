"""Database: the one connection to storage that every repository shares (writer, readers, dialect)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


class Database:
    """Writes go through `engine`; plain reads through `reader` (SQLite: readers beside one writer)."""

    def __init__(self, engine: AsyncEngine, reader: AsyncEngine | None = None) -> None:
        self.engine = engine
        self.reader = reader or engine
        self.dialect = engine.dialect.name
        url = engine.url
        # For logs: the SQLite file's path, or the server's URL without its password.
        self.location = (
            str(url.database or ":memory:")
            if self.dialect == "sqlite"
            else url.render_as_string(hide_password=True)
        )

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.reader.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()


class Repository:
    """Base of the repositories: each owns some tables and reaches them through one Database."""

    def __init__(self, db: Database) -> None:
        self.engine = db.engine
        self.reader = db.reader
        self.dialect = db.dialect
