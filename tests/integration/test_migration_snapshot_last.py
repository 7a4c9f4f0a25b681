"""0011 moves a job's snapshot to the end of its row on SQLite (PostgreSQL's table is left alone);
rows survive the upgrade and the downgrade unchanged."""

from __future__ import annotations

import json

from sqlalchemy import text

from bridge.store.engine import create_engine
from tests.clock import T0
from tests.integration.migrations import migrate

JOB = "6f1c2f9e-0000-4000-8000-0000000000bb"
SNAPSHOT = {"id": JOB, "status": "processing", "items": [{"id": "i1", "status": "queued"}] * 40}


async def _row_and_columns(conn) -> tuple[tuple, list[str]]:
    row = (
        await conn.execute(
            text(
                "SELECT account, job_id, status, next_poll_at, priority, snapshot"
                " FROM upstream_jobs"
            )
        )
    ).one()
    if conn.dialect.name == "sqlite":
        names = [r[1] for r in await conn.execute(text("PRAGMA table_info(upstream_jobs)"))]
    else:
        names = [
            r[0]
            for r in await conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = 'upstream_jobs' ORDER BY ordinal_position"
                )
            )
        ]
    snapshot = row.snapshot if isinstance(row.snapshot, dict) else json.loads(row.snapshot)
    return (row.account, row.job_id, row.status, row.priority, snapshot), names


async def test_the_snapshot_moves_last_on_sqlite_and_rows_survive_both_ways(storage_url):
    engine = create_engine(storage_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrate("upgrade", "0010_discovery"))
            await conn.execute(
                text(
                    "INSERT INTO upstream_jobs (account, job_id, snapshot, status, final,"
                    " next_poll_at, interval_s, priority, error_count, not_found_count,"
                    " failure_count, created_at, updated_at) VALUES ('main', :job, :snapshot,"
                    " 'processing', false, :at, 30.0, 1, 0, 0, 0, :at, :at)"
                ),
                {"job": JOB, "snapshot": json.dumps(SNAPSHOT), "at": T0},
            )
            before, old_names = await _row_and_columns(conn)
            await conn.run_sync(migrate("upgrade", "0011_snapshot_last"))
            after, new_names = await _row_and_columns(conn)
            await conn.run_sync(migrate("downgrade", "0010_discovery"))
            back, back_names = await _row_and_columns(conn)
    finally:
        await engine.dispose()
    assert before == after == back == ("main", JOB, "processing", 1, SNAPSHOT)
    assert old_names.index("snapshot") == 2
    assert back_names == old_names
    assert sorted(new_names) == sorted(old_names)
    if storage_url.startswith("sqlite"):
        assert new_names[-1] == "snapshot"
    else:
        assert new_names == old_names
