"""One client flooding the bridge with new watches cannot starve another client's job of polls."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from bridge.store.tables import poll_log
from tests.integration.test_poller import KEY, rig

MINUTES = 3
POLLS_PER_HOUR = 600  # one poll every 6 s; two clients waiting: a fair share of 5 polls a minute


async def test_poller_flood_of_new_watches_leaves_another_client_its_fair_share(storage_url):
    async with rig(
        storage_url, polls_per_hour=POLLS_PER_HOUR, seconds_per_item=10.0, failure_rate=0.0
    ) as r:
        # Its 20 items take 200 s, one every 10 s: every poll finds a change, so the job is due
        # again 5 s later (processing_interval_s) and wants more polls than its fair share.
        job_id = r.sim.create_job(KEY, total_items=20)
        await r.watch(job_id, client="b")
        for _ in range(MINUTES * 60):
            # Client A registers a watch on a made-up job every second: each wants a poll first.
            await r.watch(str(uuid.uuid4()), client="a")
            await r.poller.poll_due(r.clock.now())
            r.clock.advance(1)
        async with r.store.db.engine.connect() as conn:
            by_client = dict(
                (
                    await conn.execute(
                        select(poll_log.c.client, func.count()).group_by(poll_log.c.client)
                    )
                ).all()
            )
    fair_share = POLLS_PER_HOUR / 60 / 2 * MINUTES  # 15 polls in 3 minutes
    assert r.gets(job_id) >= 0.9 * fair_share
    assert by_client["b"] == r.gets(job_id)
    assert by_client["a"] >= 0.9 * fair_share  # the flooding client still gets its own share
