"""PostgreSQL: a claim's lease is a heap-only (HOT) update. It changes no indexed column, and the
outbox's pages keep room for it (fillfactor, migration 0012), so leasing writes no entry in any of
the table's eight indexes; an index over a lease column, or full pages, would make every lease
write eight again (a fifth of the database's CPU per delivery)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text

from bridge.store import open_store
from bridge.store.engine import create_engine
from bridge.store.tables import DELIVERIES_FILLFACTOR
from tests.integration.migrations import migrate
from tests.integration.outbox_rows import add_events, add_watch

AT = datetime(2026, 12, 3, 12, tzinfo=UTC)
ROWS = 40
OPTIONS = text("SELECT reloptions FROM pg_class WHERE relname = 'deliveries'")


async def _updates(pg_url: str, *, expected: int) -> tuple[int, int]:
    """(updates, HOT updates) of `deliveries` once the statistics show `expected` updates."""
    engine = create_engine(pg_url)
    try:
        async with asyncio.timeout(15):
            while True:
                async with engine.connect() as conn:
                    row = (
                        await conn.execute(
                            text(
                                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                                " WHERE relname = 'deliveries'"
                            )
                        )
                    ).one()
                if row[0] >= expected:
                    return row[0], row[1]
                await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


async def test_leases_are_heap_only_updates(pg_url):
    store = await open_store(pg_url)
    try:
        async with store.db.engine.connect() as conn:
            options = (await conn.execute(OPTIONS)).scalar_one()
        assert f"fillfactor={DELIVERIES_FILLFACTOR}" in options
        for _ in range(ROWS):
            watch = await add_watch(store, at=AT, webhook_url="https://hooks.example/in")
            await add_events(store, watch, count=1, at=AT)

        claimed = await store.outbox.claim_due(now=AT, owner="me", lease_s=30, limit=ROWS)
        assert len(claimed) == ROWS
    finally:
        await store.close()  # its sessions end, and with them their statistics are flushed

    assert await _updates(pg_url, expected=ROWS) == (ROWS, ROWS)


async def test_the_downgrade_gives_the_default_fillfactor_back(pg_url):
    engine = create_engine(pg_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrate("upgrade", "head"))
            upgraded = (await conn.execute(OPTIONS)).scalar_one()
            await conn.run_sync(migrate("downgrade", "0011_snapshot_last"))
            downgraded = (await conn.execute(OPTIONS)).scalar_one()
    finally:
        await engine.dispose()
    assert upgraded == [f"fillfactor={DELIVERIES_FILLFACTOR}"]
    assert downgraded is None
