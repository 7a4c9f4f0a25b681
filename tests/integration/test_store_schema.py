"""The migrations build exactly the schema the code's tables describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bridge.store import open_store
from bridge.store.tables import metadata


async def test_store_migrations_match_the_tables(storage_url):
    store = await open_store(storage_url)
    try:
        async with store.db.engine.connect() as conn:
            diffs = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await store.close()
    assert diffs == []
    assert set(metadata.tables) <= tables


async def test_store_opening_twice_migrates_once(storage_url):
    first = await open_store(storage_url)
    await first.close()
    second = await open_store(storage_url)  # already at head: nothing to do, nothing fails
    try:
        await second.ping()
    finally:
        await second.close()
