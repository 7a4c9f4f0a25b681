"""Two replicas (two Stores, two engines) on one PostgreSQL polling different jobs of the same
imports at once, while jobs are added: no deadlock, no lost update, events without gaps."""

from __future__ import annotations

import asyncio

import pytest

from bridge.events.snapshot import JobSnapshot
from bridge.store import open_store
from tests.integration.import_support import ImportDriver, new_job_id, snapshot

ROUNDS = 16
pytestmark = pytest.mark.postgres


def _job_at(job_id: str, n: int, rnd: int) -> JobSnapshot:
    """Job `n` at round `rnd`: its four images start and finish in turn; odd jobs fail one."""
    items: list[str | None] = []
    for i in range(4):
        start = 3 * i + n % 3
        if rnd >= start + 2:
            items.append("failed" if i == 3 and n % 2 else "completed")
        else:
            items.append("processing" if rnd >= start else "queued")
    if all(s in ("completed", "failed") for s in items):
        status = "partially_completed" if "failed" in items else "completed"
    else:
        status = "processing" if "processing" in items or "completed" in items else "queued"
    return snapshot(job_id, status, items)


async def test_two_replicas_polling_jobs_of_one_import_at_once_lose_nothing(pg_url):
    one, two = await open_store(pg_url), await open_store(pg_url)
    try:
        d = ImportDriver(one)
        main, other = await d.create(), await d.create()
        jobs = [new_job_id() for _ in range(10)]
        await d.add(main, jobs[:6])
        await d.add(other, jobs[2:4])  # in both imports: both replicas lock both imports
        late = jobs[6:]  # added while the replicas poll

        async def replica(store, mine: list[int]) -> None:
            for rnd in range(ROUNDS):
                keys = [n for n in mine if n < 6 or rnd >= 4]
                # One job per transaction and a batch of all of them, turn about.
                if rnd % 2:
                    await asyncio.gather(
                        *(d.poll(_job_at(jobs[n], n, rnd), store=store) for n in keys)
                    )
                else:
                    for n in keys:
                        await d.poll(_job_at(jobs[n], n, rnd), store=store)
                await asyncio.sleep(0)

        async def adder() -> None:
            for n, job_id in enumerate(late):
                await ImportDriver(two, clock=d.clock).add(main, [job_id])
                if n == 1:
                    await d.close(other)
                await asyncio.sleep(0.01)

        await asyncio.gather(replica(one, [0, 2, 4, 6, 8]), replica(two, [1, 3, 5, 7, 9]), adder())
        await d.close(main)
        for rnd in range(ROUNDS, ROUNDS + 16):  # the late jobs finish too
            for n in range(10):
                await d.poll(_job_at(jobs[n], n, rnd), store=(one, two)[n % 2])

        for imp, count in ((main, 10), (other, 2)):
            types = await d.check(imp)
            record = await one.imports.get(import_id=imp)
            assert record is not None
            t = record.tally
            assert t.jobs["total"] == count and t.jobs["active"] == 0
            assert t.images_total == 4 * count
            assert t.status == "partially_completed" and types[-1] == "import.partially_completed"
            assert types[0] == "import.started" and types.count("import.progress") <= 9
    finally:
        await one.close()
        await two.close()
