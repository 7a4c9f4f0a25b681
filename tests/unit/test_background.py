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


async def running(step, started: asyncio.Event) -> Background:
    """A Background whose only step (ticking hourly) has been nudged and has `started`."""
    work = Background()
    work.start({"step": (step, 3600.0)})
    work.nudge("step")
    async with asyncio.timeout(5):
        await started.wait()
    return work


async def test_stop_lets_a_running_step_finish():
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def step(_now):
        started.set()
        await release.wait()
        finished.append("done")
        return 0

    work = await running(step, started)
    stopping = asyncio.ensure_future(work.stop(timeout_s=5))
    await asyncio.sleep(0.05)  # stop() must be waiting on the step, not have cancelled it
    assert not stopping.done()
    release.set()
    async with asyncio.timeout(5):
        await stopping
    assert finished == ["done"]
    assert not work.running


async def test_stop_cancels_a_step_that_outlives_its_deadline():
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def step(_now):
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return 0

    work = await running(step, started)
    async with asyncio.timeout(5):
        await work.stop(timeout_s=0.1)
    assert cancelled == [True]
