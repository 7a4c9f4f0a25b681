"""The stall sweep: a running import with active jobs and no image finished for stall_after_s is
told `import.stalled` once; the next finished image tells `import.resumed`."""

from __future__ import annotations

from bridge.config import parse_config
from bridge.runtime import Runtime, stall_step
from tests.clock import FakeClock
from tests.integration.import_support import ImportDriver, new_job_id, snapshot

STALL_AFTER_S = 1800


async def test_a_quiet_import_stalls_once_and_resumes_when_an_image_finishes(store):
    d = ImportDriver(store)
    told: list[int] = []
    sweep = stall_step(
        store,
        planner=d.planner,
        stall_after_s=STALL_AFTER_S,
        now=d.clock.now,
        on_events=lambda: told.append(1),
    )
    imp = await d.create()
    quiet = await d.create()  # open, nothing started: never stalls
    jobs = [new_job_id(), new_job_id()]
    await d.add(imp, jobs)
    await d.add(quiet, [new_job_id()])
    await d.poll(snapshot(jobs[0], "processing", ["processing", "queued"]))
    await d.poll(snapshot(jobs[1], "queued", ["queued"]))

    d.clock.advance(STALL_AFTER_S - 1)
    assert await sweep(None) == 0
    d.clock.advance(1)
    assert await sweep(None) == 1 and told == [1]
    d.clock.advance(STALL_AFTER_S * 3)
    assert await sweep(None) == 0  # stalled once, not again
    # A poll that changes something but finishes nothing does not resume it.
    await d.poll(snapshot(jobs[0], "processing", ["processing", "processing"]))
    assert await d.check(imp) == ["import.started", "import.stalled"]

    await d.poll(snapshot(jobs[0], "processing", ["completed", "processing"]))
    assert await d.check(imp) == [
        "import.started",
        "import.stalled",
        "import.resumed",
        "import.progress",
    ]
    d.clock.advance(STALL_AFTER_S - 1)
    assert await sweep(None) == 0  # counted from the last finished image
    d.clock.advance(1)
    assert await sweep(None) == 1
    record = await store.imports.get(import_id=imp)
    assert record is not None and record.tally.stalled
    assert await d.check(quiet) == []


async def test_an_import_whose_jobs_all_ended_never_stalls(store):
    d = ImportDriver(store)
    sweep = stall_step(store, planner=d.planner, stall_after_s=STALL_AFTER_S, now=d.clock.now)
    imp = await d.create()  # not closed: running with no active job
    job = new_job_id()
    await d.add(imp, [job])
    await d.poll(snapshot(job, "processing", ["processing"]))
    await d.poll(snapshot(job, "failed", ["failed"]))
    d.clock.advance(STALL_AFTER_S * 2)
    assert await sweep(None) == 0
    assert await d.check(imp) == ["import.started", "import.progress"]


async def test_the_runtime_schedules_the_stall_sweep(tmp_path):
    config = parse_config(
        f"""
storage: {{url: "sqlite:///{tmp_path}/bridge.db"}}
imports: {{stall_after_s: 20}}
""",
        env={},
    )
    runtime = await Runtime.start(
        config, store=None, now=FakeClock(), resolve=None, background=True
    )
    try:
        job = runtime.background._scheduler.get_job("import-stalls")
        assert job is not None and job.trigger.interval.total_seconds() == 5  # a quarter of 20 s
    finally:
        await runtime.stop()
