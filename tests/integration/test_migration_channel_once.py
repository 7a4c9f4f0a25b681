"""Upgrading a database that holds deliveries from 0001: every row gets a stream and a position, and
a channel delivery still pending at the upgrade keeps later changes of its job waiting behind it."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import select, text

from bridge.store import open_store
from bridge.store.engine import _MIGRATIONS, create_engine
from bridge.store.tables import deliveries
from tests.clock import T0

WATCH, JOB = "wat_old", "6f1c2f9e-0000-4000-8000-0000000000aa"


def _upgrade_to(revision: str):
    def run(connection):
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    return run


async def _old_database(url: str) -> None:
    """A 0001 database with one watch, two events, and their deliveries: one sent, one pending."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to("0001"))
            at = {"at": T0}
            await conn.execute(
                text(
                    "INSERT INTO watches (id, client, account, job_id, status, webhook_url, events,"
                    " metadata, last_sequence, created_at, updated_at, expires_at) VALUES"
                    f" ('{WATCH}', 'shop', 'main', '{JOB}', 'active', 'https://shop.example.com/h',"
                    " '[\"*\"]', '{}', 2, :at, :at, :at)"
                ),
                at,
            )
            for seq in (1, 2):
                await conn.execute(
                    text(
                        "INSERT INTO events (id, watch_id, sequence, type, payload, created_at)"
                        f" VALUES ('evt_{seq}', '{WATCH}', {seq}, 'job.processing', '{{}}', :at)"
                    ),
                    at,
                )
            rows = [("webhook_url", 1, "delivered"), ("erp", 1, "delivered")]
            rows += [("webhook_url", 2, "delivered"), ("erp", 2, "pending")]
            for destination, seq, status in rows:
                await conn.execute(
                    text(
                        "INSERT INTO deliveries (id, event_id, watch_id, sequence, destination,"
                        " status, attempts, next_attempt_at, created_at, updated_at) VALUES"
                        f" ('dlv_{destination}_{seq}', 'evt_{seq}', '{WATCH}', {seq},"
                        f" '{destination}', '{status}', 1, :at, :at, :at)"
                    ),
                    at,
                )
    finally:
        await engine.dispose()


async def test_upgrade_puts_pending_channel_deliveries_in_their_jobs_stream(storage_url):
    await _old_database(storage_url)
    store = await open_store(storage_url)
    try:
        async with store.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(deliveries.c.id, deliveries.c.stream, deliveries.c.position).order_by(
                        deliveries.c.id
                    )
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("dlv_erp_1", f"job:main/{JOB}", 1),
            ("dlv_erp_2", f"job:main/{JOB}", 2),
            ("dlv_webhook_url_1", f"watch:{WATCH}", 1),
            ("dlv_webhook_url_2", f"watch:{WATCH}", 2),
        ]
        # A change observed after the upgrade goes to the channel after the one still pending.
        async with store.db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO events (id, watch_id, sequence, type, payload, created_at)"
                    f" VALUES ('evt_3', '{WATCH}', 3, 'job.completed', '{{}}', :at)"
                ),
                {"at": T0},
            )
            await conn.execute(
                deliveries.insert().values(
                    id="dlv_erp_3",
                    event_id="evt_3",
                    watch_id=WATCH,
                    sequence=3,
                    destination="erp",
                    status="pending",
                    attempts=0,
                    next_attempt_at=T0,
                    created_at=T0,
                    updated_at=T0,
                    stream=f"job:main/{JOB}",
                    position=1_764_000_000_000_000,
                    change_key="k" * 64,
                )
            )
        claimed = await store.outbox.claim_due(
            now=T0 + timedelta(hours=1), owner="r1", lease_s=1, limit=10
        )
        assert [c.id for c in claimed] == ["dlv_erp_2"]
    finally:
        await store.close()
