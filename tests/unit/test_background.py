import asyncio

from bridge.background import Background


async def test_background_schedules_long_steps_too():
    calls: list[str] = []

    async def step(_now):
        calls.append("x")
        return 0

    work = Background()
    work.start({"fast": (step, 1.0), "housekeeping": (step, 300.0)})
    try:
        jobs = {job.id: job for job in work._scheduler.get_jobs()}
        assert jobs["housekeeping"].next_run_time is not None  # not added paused
        async with asyncio.timeout(5):
            while not calls:
                await asyncio.sleep(0.01)
    finally:
        await work.stop()
    assert not work.running


async def test_background_nudge_runs_a_step_now():
    ran = asyncio.Event()

    async def step(_now):
        ran.set()
        return 0

    work = Background()
    work.start({"slow": (step, 3600.0)})
    try:
        work.nudge("slow")
        async with asyncio.timeout(5):
            await ran.wait()
    finally:
        await work.stop()
