"""Upstream text no store can hold (a NUL, a lone surrogate) is stored replaced, not refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.test_poller import KEY, _job, rig

# As the upstream's JSON sends them ("\u0000", "\ud800"), and as they are stored: a NUL (which
# PostgreSQL's text cannot hold) as U+FFFD, a lone surrogate (which UTF-8 cannot) as "?".
ODD_TEXT = [("\x00", "\ufffd"), ("\ud800", "?"), ("\x00\ud800", "\ufffd?")]


@pytest.mark.parametrize(("ODD", "STORED"), ODD_TEXT, ids=["nul", "surrogate", "both"])
async def test_a_failed_items_nul_and_lone_surrogate_are_stored_replaced(storage_url, ODD, STORED):
    async with rig(storage_url, seconds_per_item=10_000) as r:
        job_id = r.sim.create_job(KEY, total_items=3)
        record, _ = await r.store.imports.create(
            client="shop",
            account="main",
            name="Odd text",
            webhook_url=None,
            events=["import.*"],
            metadata={},
            expected_jobs=1,
            idempotency_key=None,
            now=r.clock.now(),
        )
        [watch] = await r.store.imports.add_jobs(
            import_id=record.id,
            client="shop",
            job_ids=[job_id],
            metadata={},
            now=r.clock.now(),
            ttl=timedelta(hours=48),
            planner=r.poller.imports,
        )
        body = _job(
            job_id,
            "partially_completed",
            [("sku-ok", "completed"), (f"sku{ODD}", "failed"), ("sku-held", f"held{ODD}")],
        )
        body["items"][1].update(
            id=f"item{ODD}", error_code=f"bad{ODD}", error_message=f"broken {ODD} text"
        )
        r.sim.set_job(job_id, body)
        await r.run(1)
        assert r.gets(job_id) == 1

        events = await r.store.watches.events(watch_id=watch.id)
        assert [e.type for e in events] == [
            "item.completed",
            "item.failed",
            f"item.held{STORED}",
            "job.partially_completed",
        ]
        item = events[1].payload["data"]["item"]
        assert (item["id"], item["external_id"], item["error_code"], item["error_message"]) == (
            f"item{STORED}",
            f"sku{STORED}",
            f"bad{STORED}",
            f"broken {STORED} text",
        )
        stored = await r.store.watches.get(watch_id=watch.id)
        assert stored is not None and stored.job is not None
        assert stored.job["status"] == "partially_completed" and stored.error_code is None
        assert stored.job["items"][2]["status"] == f"held{STORED}"
        [failure] = await r.store.imports.failures(import_id=record.id, limit=10)
        assert (
            failure.job_id,
            failure.item_id,
            failure.external_id,
            failure.error_code,
            failure.error_message,
        ) == (job_id, f"item{STORED}", f"sku{STORED}", f"bad{STORED}", f"broken {STORED} text")
        await r.run(30)
        stored = await r.store.watches.get(watch_id=watch.id)
        assert stored is not None and stored.status == "active" and stored.error_code is None
