"""Driving imports through the store as the poller does, and recounting them independently.

`ImportDriver` creates imports and jobs through `store.imports`, polls jobs with `plan_poll` and an
Ok outcome of a given snapshot inside `store.jobs.apply_plans` (with `imports=ImportEventPlanner`),
and `check` compares each `imports` row with a recount from the jobs' snapshots, never from
`watches.counted`, and checks the import's events.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from random import Random
from typing import Any

from sqlalchemy import select

from bridge.config import PollingConfig, parse_config
from bridge.events.import_events import ImportEventPlanner
from bridge.events.rollup import contribution, recount
from bridge.events.routing import Router
from bridge.events.snapshot import ItemSnapshot, JobSnapshot
from bridge.events.vocabulary import IMPORT_FINAL
from bridge.polling.outcomes import Ok
from bridge.polling.planning import PlanContext, plan_poll
from bridge.store import Store
from bridge.store.tables import deliveries, events, import_failures, upstream_jobs, watches
from tests.clock import FakeClock

ACCOUNT = "main"
CLIENT = "shop"
HOOK = "https://hooks.example.com/imports"
ROUTED = parse_config(
    """
channels:
  ops-hook: {type: webhook, url: "https://hooks.example.com/ops", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
routes:
  - {events: ["import.*"], channels: [ops-hook]}
""",
    env={},
)
ROUTER = Router.from_config(ROUTED)
FINAL_TYPES = frozenset(f"import.{s}" for s in IMPORT_FINAL)


def snapshot(job_id: str, status: str | None, items: list[str | None]) -> JobSnapshot:
    """A job with items item-0, item-1, ... in these statuses, one credit per completed one."""
    return JobSnapshot(
        id=job_id,
        status=status,
        total_items=len(items),
        completed_items=items.count("completed"),
        failed_items=items.count("failed"),
        credits_used=items.count("completed"),
        items=tuple(
            ItemSnapshot(id=f"item-{n}", status=s, external_id=f"sku-{n}")
            for n, s in enumerate(items)
        ),
    )


@dataclass
class ImportDriver:
    """Imports and their jobs, moved through the store with a fake clock."""

    store: Store
    clock: FakeClock = field(default_factory=FakeClock)
    router: Router = ROUTER
    rng: Random = field(default_factory=lambda: Random(3))
    # Snapshot of the job when a watch was cancelled: its contribution stays what it was then.
    frozen: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    @property
    def planner(self) -> ImportEventPlanner:
        return ImportEventPlanner(self.router)

    async def create(self, *, expected_jobs: int | None = None, hook: bool = True) -> str:
        record, _ = await self.store.imports.create(
            client=CLIENT,
            account=ACCOUNT,
            name="catalog",
            webhook_url=HOOK if hook else None,
            events=["*"],
            metadata={"batch": "b1"},
            expected_jobs=expected_jobs,
            idempotency_key=None,
            now=self.clock.now(),
        )
        return record.id

    async def add(self, import_id: str, job_ids: list[str]) -> None:
        await self.store.imports.add_jobs(
            import_id=import_id,
            client=CLIENT,
            job_ids=job_ids,
            metadata={},
            now=self.clock.now(),
            ttl=timedelta(days=2),
            planner=self.planner,
        )

    async def watch(self, job_id: str) -> str:
        """A watch of the job outside any import."""
        record, _ = await self.store.watches.create(
            client=CLIENT,
            account=ACCOUNT,
            job_id=job_id,
            webhook_url=None,
            events=["*"],
            metadata={},
            idempotency_key=None,
            now=self.clock.now(),
            ttl=timedelta(days=2),
        )
        return record.id

    async def poll(self, job: JobSnapshot, *, store: Store | None = None) -> None:
        """One Ok poll of the job answering `job`, written as the poller writes it."""
        ctx = PlanContext(
            polling=PollingConfig(), router=self.router, now=self.clock.now(), rng=self.rng
        )
        await (store or self.store).jobs.apply_plans(
            [(ACCOUNT, job.id)],
            lambda row, watching: plan_poll(row, watching, Ok(snapshot=job), ctx),
            now=self.clock.now(),
            imports=self.planner,
        )

    async def stored(self, job_id: str) -> JobSnapshot | None:
        """The job's snapshot as the store keeps it, None before its first poll."""
        async with self.store.db.engine.connect() as conn:
            found = await conn.scalar(
                select(upstream_jobs.c.snapshot).where(
                    upstream_jobs.c.account == ACCOUNT, upstream_jobs.c.job_id == job_id
                )
            )
        return JobSnapshot.from_dict(found) if found else None

    async def close(self, import_id: str) -> None:
        await self.store.imports.close(
            import_id=import_id, client=None, now=self.clock.now(), planner=self.planner
        )

    async def cancel(self, import_id: str) -> None:
        async with self.store.db.engine.connect() as conn:
            rows = await conn.execute(
                select(watches.c.id, upstream_jobs.c.snapshot)
                .join(
                    upstream_jobs,
                    (upstream_jobs.c.account == watches.c.account)
                    & (upstream_jobs.c.job_id == watches.c.job_id),
                )
                .where(watches.c.import_id == import_id, watches.c.status == "active")
            )
            self.frozen.update({r.id: r.snapshot for r in rows})
        await self.store.imports.cancel(
            import_id=import_id, client=None, now=self.clock.now(), planner=self.planner
        )

    async def recount(self, import_id: str) -> dict[str, Any]:
        """The import's counts summed from its jobs' snapshots and its watches' statuses."""
        async with self.store.db.engine.connect() as conn:
            rows = await conn.execute(
                select(watches.c.id, watches.c.status, upstream_jobs.c.snapshot)
                .join(
                    upstream_jobs,
                    (upstream_jobs.c.account == watches.c.account)
                    & (upstream_jobs.c.job_id == watches.c.job_id),
                )
                .where(watches.c.import_id == import_id)
            )
            found = []
            for r in rows:
                snap = self.frozen[r.id] if r.id in self.frozen else r.snapshot
                job = JobSnapshot.from_dict(snap) if snap else None
                found.append(contribution(r.status, job))
        return recount(found)

    async def check(self, import_id: str) -> list[str]:
        """Assert the row equals the recount and the events keep their rules; the event types."""
        record = await self.store.imports.get(import_id=import_id)
        assert record is not None
        t = record.tally
        row = {
            "jobs": t.jobs,
            "images": {
                "total": t.images_total,
                "completed": t.images_completed,
                "failed": t.images_failed,
            },
            "credits_used": t.credits_used,
            "jobs_seen": t.jobs_seen,
        }
        assert row == await self.recount(import_id)
        types = await self.check_events(import_id, last_sequence=record.last_sequence)
        assert (sum(1 for e in types if e in FINAL_TYPES) == 1) == t.ended
        if t.closed and t.jobs["total"] and not t.ended:
            assert t.jobs["active"] > 0
        await self.check_failures(import_id)
        return types

    async def check_events(self, import_id: str, *, last_sequence: int) -> list[str]:
        async with self.store.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(events.c.id, events.c.sequence, events.c.type, events.c.payload)
                    .where(events.c.watch_id == import_id)
                    .order_by(events.c.sequence)
                )
            ).all()
            sent = Counter(
                (r.event_id, r.destination)
                for r in await conn.execute(
                    select(deliveries.c.event_id, deliveries.c.destination).where(
                        deliveries.c.watch_id == import_id
                    )
                )
            )
        assert [r.sequence for r in rows] == list(range(1, last_sequence + 1))
        types = [r.type for r in rows]
        assert types.count("import.progress") <= 9
        assert types.count("import.started") <= 1
        finals = [e for e in types if e in FINAL_TYPES]
        assert len(finals) <= 1 and (not finals or types[-1] == finals[0])
        if "import.progress" in types:
            assert types.index("import.started") < types.index("import.progress")
        turns = [e for e in types if e in ("import.stalled", "import.resumed")]
        assert all(e == ("import.stalled", "import.resumed")[n % 2] for n, e in enumerate(turns))
        for r in rows:
            assert r.payload["data"]["sequence"] == r.sequence
            assert r.payload["data"]["import_id"] == import_id
            # Once each to the import's own webhook and to the channel routing import.*.
            assert sent[(r.id, "webhook_url")] == 1 and sent[(r.id, "ops-hook")] == 1
        assert sum(sent.values()) == 2 * len(rows)
        return types

    async def check_failures(self, import_id: str) -> None:
        """Every failed image of a job as the import counted it has its failures row."""
        async with self.store.db.engine.connect() as conn:
            recorded = {
                (r.job_id, r.item_id)
                for r in await conn.execute(
                    select(import_failures.c.job_id, import_failures.c.item_id).where(
                        import_failures.c.import_id == import_id
                    )
                )
            }
            rows = await conn.execute(
                select(watches.c.id, watches.c.job_id, upstream_jobs.c.snapshot)
                .join(
                    upstream_jobs,
                    (upstream_jobs.c.account == watches.c.account)
                    & (upstream_jobs.c.job_id == watches.c.job_id),
                )
                .where(watches.c.import_id == import_id)
            )
            wanted = set()
            for r in rows:
                snap = self.frozen[r.id] if r.id in self.frozen else r.snapshot
                for item in (snap or {}).get("items") or ():
                    if item["status"] in ("failed", "cancelled"):
                        wanted.add((r.job_id, item["id"]))
        assert wanted <= recorded


def new_job_id() -> str:
    return str(uuid.uuid4())
