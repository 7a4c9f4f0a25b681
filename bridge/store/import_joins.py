"""insert_watches / fold_new: a job joins an import, counted at once with its job as last polled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.events.import_events import ImportEventPlanner
from bridge.events.import_view import ImportRecord
from bridge.events.rollup import fold, settle
from bridge.ids import new_id
from bridge.store.import_writes import (
    ImportChange,
    failure_rows,
    insert_failures,
    joining,
    write_import_events,
    write_imports,
)
from bridge.store.tables import upstream_jobs, watches
from bridge.store.watches import schedule_first_poll

W = watches


async def insert_watches(
    conn: AsyncConnection,
    dialect: str,
    record: ImportRecord,
    job_ids: Sequence[str],
    metadata: dict[str, str],
    now: datetime,
    ttl: timedelta,
) -> tuple[dict[str, str], list[ImportChange]]:
    """Insert the watches, each counted at once with its job as last polled (another watch may
    have polled it): the import's counts always equal the sum over its watches."""
    for job_id in sorted(job_ids):  # one lock order: the poller locks jobs sorted too
        await schedule_first_poll(conn, dialect, account=record.account, job_id=job_id, now=now)
    known = await _snapshots(conn, record.account, job_ids)  # read under the jobs' locks
    ids = {job_id: new_id("wat") for job_id in job_ids}
    joined = [joining(record.id, job_id, known.get(job_id)) for job_id in job_ids]
    await conn.execute(
        W.insert(),
        [
            {
                "id": ids[job_id],
                "client": record.client,
                "account": record.account,
                "job_id": job_id,
                "status": "active",
                "webhook_url": record.webhook_url,
                "events": list(record.events),
                "metadata": {**record.metadata, **metadata},
                "idempotency_key": None,
                "last_sequence": 0,
                "created_at": now,
                "updated_at": now,
                "expires_at": now + ttl,
                "import_id": record.id,
                "counted": change.new.to_dict(),
            }
            for job_id, change in zip(job_ids, joined, strict=True)
        ],
    )
    return ids, joined


async def fold_new(
    conn: AsyncConnection,
    record: ImportRecord,
    joined: Sequence[ImportChange],
    *,
    planner: ImportEventPlanner,
    now: datetime,
) -> None:
    tally = record.tally
    for change in joined:
        tally = fold(tally, None, change.new, now=now, timed=False)
    expected = tally.expected_jobs
    if expected is not None and tally.jobs["total"] >= expected:
        tally = replace(tally, closed=True)
    # A job already under way starts the import; what it finished before is no resumption.
    tally, types = settle(tally, now=now, finished_before=tally.images_finished)
    after, planned = planner.plan(record, tally, types, now=now)
    await write_imports(conn, [after], now=now)
    await write_import_events(conn, planned, now=now)
    await insert_failures(conn, [row for c in joined for row in failure_rows(c, now)])


async def _snapshots(
    conn: AsyncConnection, account: str, job_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The jobs' snapshots as last polled (by any watch), for those polled yet."""
    rows = await conn.execute(
        select(upstream_jobs.c.job_id, upstream_jobs.c.snapshot).where(
            upstream_jobs.c.account == account, upstream_jobs.c.job_id.in_(list(job_ids))
        )
    )
    return {r.job_id: r.snapshot for r in rows if r.snapshot}
