"""Imports rolled up in the poll path, on SQLite and PostgreSQL: after any polls of any jobs of
several imports the `imports` row equals a recount from the jobs, and the events keep their rules."""

from __future__ import annotations

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.integration.import_support import ImportDriver, new_job_id, snapshot

IMPORTS, JOBS = 2, 3
ITEM = st.sampled_from([None, "queued", "processing", "completed", "failed", "cancelled"])
STATUS = st.sampled_from(
    [None, "queued", "processing", "processing", "completed", "partially_completed", "failed"]
)
OPS = st.one_of(
    st.tuples(st.just("add"), st.integers(0, IMPORTS - 1), st.integers(0, JOBS - 1)),
    st.tuples(st.just("watch"), st.integers(0, JOBS - 1)),
    st.tuples(st.just("poll"), st.integers(0, JOBS - 1), STATUS, st.lists(ITEM, max_size=4)),
    st.tuples(st.just("poll"), st.integers(0, JOBS - 1), STATUS, st.lists(ITEM, max_size=4)),
    st.tuples(st.just("close"), st.integers(0, IMPORTS - 1)),
    st.tuples(st.just("cancel"), st.integers(0, IMPORTS - 1)),
    st.tuples(st.just("wait"), st.integers(1, 900)),
)
EXAMPLES = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Scenario:
    """One example: fresh imports and jobs in the shared database, and the jobs' last snapshots."""

    def __init__(self, driver: ImportDriver) -> None:
        self.d = driver
        self.imports: list[str] = []
        self.jobs = [new_job_id() for _ in range(JOBS)]
        self.last: dict[str, object] = {}
        self.known: set[str] = set()  # jobs with a row (watched or in an import)

    async def start(self) -> None:
        self.imports = [await self.d.create() for _ in range(IMPORTS)]

    async def run(self, op: tuple[object, ...]) -> None:
        kind = op[0]
        if kind == "add":
            imp, job = self.imports[op[1]], self.jobs[op[2]]  # type: ignore[index]
            record = await self.d.store.imports.get(import_id=imp)
            assert record is not None
            if not record.tally.closed:
                await self.d.add(imp, [job])
                self.known.add(job)
        elif kind == "watch":
            await self.d.watch(self.jobs[op[1]])  # type: ignore[index]
            self.known.add(self.jobs[op[1]])  # type: ignore[index]
        elif kind == "poll":
            job_id = self.jobs[op[1]]  # type: ignore[index]
            job = self.last.get(job_id)
            if job is None or not job.is_final:  # type: ignore[attr-defined]
                job = snapshot(job_id, op[2], list(op[3]))  # type: ignore[arg-type]
            await self.d.poll(job)  # type: ignore[arg-type]
            if job_id in self.known:
                # The job as the bridge keeps it (items once seen are carried over): a "completed"
                # job without items, after one with an unsettled item, is not final there.
                self.last[job_id] = await self.d.stored(job_id)
        elif kind == "close":
            await self.d.close(self.imports[op[1]])  # type: ignore[index]
        elif kind == "cancel":
            await self.d.cancel(self.imports[op[1]])  # type: ignore[index]
        elif kind == "wait":
            self.d.clock.advance(op[1])  # type: ignore[arg-type]

    async def finish(self) -> None:
        """Close every import and end every job: each import with jobs ends, once."""
        for imp in self.imports:
            await self.d.close(imp)
        for job_id in self.jobs:
            # Every item final (an item once seen never goes: a poll carries it over).
            await self.run(
                ("poll", self.jobs.index(job_id), "completed", ["completed", "failed"] * 2)
            )
        for imp in self.imports:
            types = await self.d.check(imp)
            record = await self.d.store.imports.get(import_id=imp)
            assert record is not None
            t = record.tally
            assert t.ended == (t.jobs["total"] > 0 or t.status == "cancelled")
            assert sum(t.startswith("import.") and t.split(".")[1] in FINALS for t in types) == (
                1 if record.tally.ended else 0
            )


FINALS = {"completed", "partially_completed", "failed", "cancelled"}


@EXAMPLES
@given(ops=st.lists(OPS, min_size=1, max_size=24))
async def test_any_polls_of_any_jobs_of_several_imports_roll_up_to_a_recount(store, ops):
    scenario = Scenario(ImportDriver(store))
    await scenario.start()
    note(f"ops: {ops}")
    for op in ops:
        await scenario.run(op)
        for imp in scenario.imports:
            await scenario.d.check(imp)
    await scenario.finish()


async def test_a_job_already_polled_by_another_watch_counts_when_it_joins(store):
    """The open question settled: a job joining an import is counted at once, from its job as last
    polled, not at its new watch's first poll; its earlier images make no rate."""
    d = ImportDriver(store)
    job = new_job_id()
    await d.watch(job)
    await d.poll(snapshot(job, "processing", ["completed", "failed", "processing"]))
    imp = await d.create(expected_jobs=1)
    d.clock.advance(60)
    await d.add(imp, [job])
    record = await store.imports.get(import_id=imp)
    assert record is not None
    t = record.tally
    assert (t.images_total, t.images_completed, t.images_failed) == (3, 1, 1)
    assert t.closed and t.status == "running" and t.finished_by_minute == {}
    assert await d.check(imp) == ["import.started", "import.progress"]
    failures = await store.imports.failures(import_id=imp, limit=10)
    assert [(f.job_id, f.item_id, f.external_id) for f in failures] == [(job, "item-1", "sku-1")]

    await d.poll(snapshot(job, "processing", ["completed", "failed", "processing"]))
    assert await d.check(imp) == ["import.started", "import.progress"]  # the same job: no news
    await d.poll(snapshot(job, "partially_completed", ["completed", "failed", "completed"]))
    types = await d.check(imp)
    assert types[-2:] == ["import.progress", "import.partially_completed"]
    assert types[:2] == ["import.started", "import.progress"] and len(types) == 4
    record = await store.imports.get(import_id=imp)
    assert record is not None and sum(record.tally.finished_by_minute.values()) == 1


async def test_a_job_that_ended_before_it_joined_ends_the_closed_import_at_its_first_poll(store):
    d = ImportDriver(store)
    job = new_job_id()
    await d.watch(job)
    await d.poll(snapshot(job, "completed", ["completed", "completed"]))
    imp = await d.create(expected_jobs=1)
    await d.add(imp, [job])
    assert await d.check(imp) == ["import.started", "import.progress"]
    await d.poll(snapshot(job, "completed", ["completed", "completed"]))  # due at once again
    assert await d.check(imp) == ["import.started", "import.progress", "import.completed"]
