"""A claim that loses rows to another replica (locked by its claim, so skipped) says so, and the
deliverer claims again at once instead of waiting for its next tick (PostgreSQL: replicas)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bridge.store import open_store
from bridge.store.tables import deliveries
from tests.integration.outbox_rows import add_events, add_watch

AT = datetime(2026, 12, 3, 12, tzinfo=UTC)


async def test_rows_another_replica_is_claiming_are_passed_over_and_counted(pg_url):
    store = await open_store(pg_url)
    try:
        for _ in range(5):
            watch = await add_watch(store, at=AT, webhook_url="https://hooks.example/in")
            await add_events(store, watch, count=1, at=AT)
        async with store.db.engine.connect() as other:  # another replica, mid-claim
            await other.begin()
            locked = (
                (
                    await other.execute(
                        select(deliveries.c.id).order_by(deliveries.c.id).limit(3).with_for_update()
                    )
                )
                .scalars()
                .all()
            )

            claimed = await store.outbox.claim_due(now=AT, owner="me", lease_s=30, limit=5)

            assert not {row.id for row in claimed} & set(locked)
            assert (len(claimed), claimed.passed_over) == (2, 3)
            await other.rollback()

        again = await store.outbox.claim_due(now=AT, owner="me", lease_s=30, limit=5)
        assert sorted(row.id for row in again) == sorted(locked)
        assert again.passed_over == 0
    finally:
        await store.close()
