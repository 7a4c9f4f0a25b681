"""The poller against the simulator over real HTTP, with a fake clock: events, faults, budget."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.config import Config, parse_config
from bridge.devtools.localserver import serving
from bridge.devtools.simulator import KeyLimits, Simulator, SimulatorSettings, create_simulator
from bridge.events.routing import Router
from bridge.ops.metrics import Metrics
from bridge.polling.planning import plan_poll
from bridge.polling.poller import Poller, PollPlanner
from bridge.polling.pool import UpstreamPool
from bridge.store import Store, open_store
from bridge.store.tables import account_budgets
from tests.clock import T0, FakeClock

KEY = "aigen_test_poller"
OTHER_KEY = "aigen_test_other"


@dataclass
class Rig:
    clock: FakeClock
    sim: Simulator
    store: Store
    poller: Poller
    config: Config

    async def watch(self, job_id: str, *, account: str = "main", client: str = "shop", **kw: Any):
        watch, _ = await self.store.watches.create(
            client=client,
            account=account,
            job_id=job_id,
            webhook_url=kw.get("webhook_url"),
            events=kw.get("events", ["*"]),
            metadata=kw.get("metadata", {}),
            idempotency_key=None,
            now=self.clock.now(),
            ttl=timedelta(hours=kw.get("ttl_h", 48)),
        )
        return watch

    async def events(self, watch_id: str) -> list[tuple[int, str, str | None, str | None]]:
        rows = await self.store.watches.events(watch_id=watch_id)
        return [
            (
                e.sequence,
                e.type,
                e.payload["data"]["previous_status"],
                (e.payload["data"]["item"] or {}).get("external_id"),
            )
            for e in rows
        ]

    async def run(self, seconds: float, *, step: float = 1.0) -> int:
        """Advance the clock in steps, polling what is due at each step; returns polls made."""
        polls = 0
        elapsed = 0.0
        while elapsed < seconds:
            polls += await self.poller.poll_due(self.clock.now())
            self.clock.advance(step)
            elapsed += step
        return polls

    def gets(self, job_id: str) -> int:
        return self.sim.stats()["jobs"].get(job_id, {}).get("gets", 0)


def _config(sim_url: str, storage_url: str, *, polls_per_hour: int, extra: str = "") -> Config:
    return parse_config(
        f"""
storage: {{url: "{storage_url}"}}
upstream:
  base_url: "{sim_url}"
  timeout_s: 2
  transport: httpx
  accounts:
    main: {{api_key: {KEY}, polls_per_hour: {polls_per_hour}, max_concurrency: 4}}
    other: {{api_key: {OTHER_KEY}, polls_per_hour: {polls_per_hour}, max_concurrency: 4}}
    revoked: {{api_key: aigen_test_revoked, polls_per_hour: {polls_per_hour}}}
polling: {{queued_interval_s: 10, processing_interval_s: 5, max_interval_s: 60, watch_ttl_h: 48}}
clients:
  shop: {{token: shop-token-123, accounts: [main, other, revoked]}}
{extra}
""",
        env={},
    )


@contextlib.asynccontextmanager
async def rig(
    storage_url: str,
    *,
    polls_per_hour: int = 3600,
    sim_polls_per_hour: int = 100_000,
    seconds_per_item: float = 2.0,
    failure_rate: float = 0.25,
    plan: PollPlanner = plan_poll,
    batch: int = 200,
    rounds: int | None = None,
) -> AsyncIterator[Rig]:
    clock = FakeClock()
    settings = SimulatorSettings(
        keys={
            KEY: KeyLimits(polls_per_hour=sim_polls_per_hour, max_active_jobs=50),
            OTHER_KEY: KeyLimits(polls_per_hour=sim_polls_per_hour, max_active_jobs=50),
        },
        queue_delay_s=3.0,
        seconds_per_item=seconds_per_item,
        failure_rate=failure_rate,
        seed=7,
        now=clock.now,
    )
    app = create_simulator(settings)
    async with serving(app) as server:
        config = _config(server.url, storage_url, polls_per_hour=polls_per_hour)
        store = await open_store(config.storage.url)
        clients = UpstreamPool(config)
        poller = Poller(
            store=store,
            upstream=clients,
            accounts=config.upstream.accounts,
            polling=config.polling,
            router=Router.from_config(config),
            timeout_s=config.upstream.timeout_s,
            metrics=Metrics(),
            now=clock.now,
            owner="test-replica",
            rng=Random(1),
            plan=plan,
            batch=batch,
            rounds=rounds,
        )
        await poller.start()
        try:
            yield Rig(clock, app.state.simulator, store, poller, config)
        finally:
            await clients.aclose()
            await store.close()


def _job(job_id: str, status: str | None, items: list[tuple[str, str | None]], **extra: Any):
    body: dict[str, Any] = {
        "id": job_id,
        "total_items": len(items),
        "credits_reserved": len(items),
        "sandbox": True,
        "completed_items": sum(1 for _, s in items if s == "completed"),
        "failed_items": sum(1 for _, s in items if s == "failed"),
        "credits_used": sum(1 for _, s in items if s == "completed"),
        "items": [
            {"id": f"00000000-0000-4000-8000-00000000000{i}", "external_id": ext, "status": s}
            for i, (ext, s) in enumerate(items)
        ],
        **extra,
    }
    if status is not None:
        body["status"] = status
    return body


async def test_poller_scripted_states_give_exactly_the_contract_events(storage_url):
    async with rig(storage_url) as r:
        job_id = r.sim.create_job(KEY, total_items=2)
        r.sim.set_job(job_id, _job(job_id, "queued", [("a", "queued"), ("b", "queued")]))
        watch = await r.watch(job_id)
        await r.run(1)
        r.sim.set_job(job_id, _job(job_id, "processing", [("a", "processing"), ("b", "queued")]))
        await r.run(11)
        # status missing and an unknown item status: no crash, no invented event
        r.sim.set_job(job_id, _job(job_id, None, [("a", "completed"), ("b", "paused_by_ops")]))
        await r.run(11)
        r.sim.set_job(
            job_id, _job(job_id, "partially_completed", [("a", "completed"), ("b", "failed")])
        )
        await r.run(11)
        assert await r.events(watch.id) == [
            (1, "job.queued", None, None),
            (2, "item.processing", "queued", "a"),
            (3, "job.processing", "queued", None),
            (4, "item.completed", "processing", "a"),
            (5, "item.paused_by_ops", "queued", "b"),
            (6, "item.failed", "paused_by_ops", "b"),
            (7, "job.partially_completed", "processing", None),
        ]
        done = await r.store.watches.get(watch_id=watch.id)
        assert done is not None and done.status == "completed" and done.next_poll_at is None
        assert done.job is not None and done.job["status"] == "partially_completed"
        polls = r.gets(job_id)
        await r.run(120)
        assert r.gets(job_id) == polls  # a finished job is never polled again


async def test_poller_follows_a_simulated_job_to_its_end(storage_url):
    async with rig(storage_url, seconds_per_item=4.0) as r:
        job_id = r.sim.create_job(KEY, total_items=6, external_ids=[f"sku-{i}" for i in range(6)])
        watch = await r.watch(job_id, metadata={"order": "A-1"})
        await r.run(120)
        events = await r.store.watches.events(watch_id=watch.id)
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        types = [e.type for e in events]
        assert types[0] == "job.queued" and types[-1].startswith("job.")
        final = r.sim.peek(job_id)
        assert types[-1] == f"job.{final['status']}"
        finals = {
            e.payload["data"]["item"]["external_id"]: e.type
            for e in events
            if e.type in ("item.completed", "item.failed")
        }
        assert finals == {i["external_id"]: f"item.{i['status']}" for i in final["items"]}
        assert all(e.payload["data"]["metadata"] == {"order": "A-1"} for e in events)
        last = events[-1].payload["data"]["job"]
        assert last["completed_items"] + last["failed_items"] == 6


async def test_poller_faults_give_no_event_and_back_off(storage_url):
    async with rig(storage_url) as r:
        job_id = r.sim.create_job(KEY, total_items=1)
        r.sim.set_job(job_id, _job(job_id, "queued", [("a", "queued")]))
        watch = await r.watch(job_id)
        r.sim.script(job_id, [{"status": 500}, {"garbage": True}, {"status": 502}])
        await r.run(1)
        await r.run(25)
        assert await r.events(watch.id) == []
        row = await r.store.watches.get(watch_id=watch.id)
        assert row is not None and row.job is None
        await r.run(120)
        assert await r.events(watch.id) == [(1, "job.queued", None, None)]


async def test_poller_timeout_gives_no_event(storage_url):
    async with rig(storage_url) as r:
        job_id = r.sim.create_job(KEY, total_items=1)
        r.sim.script(job_id, [{"delay_s": 3.0}])  # the client's timeout is 2 s
        watch = await r.watch(job_id)
        await r.run(1)
        assert await r.events(watch.id) == []
        await r.run(60)
        assert [e[1] for e in await r.events(watch.id)][-1:] == ["job.completed"]


async def test_poller_honours_retry_after_on_429(storage_url):
    async with rig(storage_url) as r:
        job_id = r.sim.create_job(KEY, total_items=1)
        r.sim.set_job(job_id, _job(job_id, "queued", [("a", "queued")]))
        await r.watch(job_id)
        r.sim.script(None, [{"status": 429, "retry_after": 120}], api_key=KEY)
        await r.run(1)
        assert r.sim.stats()["jobs"][job_id]["gets"] == 1
        before = r.gets(job_id)
        await r.run(118)
        assert r.gets(job_id) == before  # paused: not a single poll inside Retry-After
        await r.run(4)
        assert r.gets(job_id) == before + 1


async def test_poller_budget_is_never_overspent_and_shared_fairly(storage_url):
    # 12 polls an hour = one every 300 s; 6 jobs each wanting a poll every 5-10 s.
    async with rig(storage_url, polls_per_hour=12, seconds_per_item=10_000) as r:
        jobs = [r.sim.create_job(KEY, total_items=1) for _ in range(6)]
        for job_id in jobs:
            await r.watch(job_id)
        await r.run(2 * 3600, step=5)
        polls = r.sim.stats()["keys"][KEY]["polls"]
        times = sorted(datetime.fromisoformat(p.replace("Z", "+00:00")) for p in polls)
        for i, start in enumerate(times):
            assert sum(1 for t in times[i:] if t < start + timedelta(hours=1)) <= 12
        assert len(times) >= 22  # and the budget is actually spent
        counts = [r.gets(j) for j in jobs]
        assert max(counts) - min(counts) <= 1  # stretched fairly, every job polled in turn


async def test_poller_new_watch_goes_first(storage_url):
    async with rig(storage_url, polls_per_hour=12, seconds_per_item=10_000) as r:
        old = [r.sim.create_job(KEY, total_items=1) for _ in range(4)]
        for job_id in old:
            await r.watch(job_id)
        await r.run(1000, step=5)
        fresh = r.sim.create_job(KEY, total_items=1)
        await r.watch(fresh)
        await r.run(310, step=5)
        assert r.gets(fresh) == 1


async def test_poller_one_poll_serves_every_watch_on_a_job(storage_url):
    async with rig(storage_url) as r:
        job_id = r.sim.create_job(KEY, total_items=1)
        r.sim.set_job(job_id, _job(job_id, "processing", [("a", "processing")]))
        first = await r.watch(job_id)
        await r.run(1)
        late = await r.watch(job_id)
        second = await r.watch(job_id)
        gets = r.gets(job_id)
        await r.run(1)
        assert r.gets(job_id) == gets + 1
        expected = [(1, "item.processing", None, "a"), (2, "job.processing", None, None)]
        assert await r.events(first.id) == expected
        assert await r.events(late.id) == expected  # compared with an empty job on its first poll
        assert await r.events(second.id) == expected


async def _refused_since(store: Store, account: str) -> datetime | None:
    async with store.db.engine.connect() as conn:
        found = await conn.scalar(
            sa.select(account_budgets.c.unauthorized_since).where(
                account_budgets.c.account == account
            )
        )
    return found if isinstance(found, datetime) else None


async def test_poller_fails_every_watch_of_a_rejected_key(storage_url):
    async with rig(storage_url) as r:
        watches = [await r.watch(str(_uuid(i)), account="revoked") for i in range(3)]
        await r.run(3)  # three 401s within seconds: not yet proof that the key is gone
        for watch in watches:
            row = await r.store.watches.get(watch_id=watch.id)
            assert row is not None and row.status == "active"
        assert await _refused_since(r.store, "revoked") == T0  # stored, so a restart keeps it
        await r.run(60)  # refused again a minute after the first 401: every watch fails
        for watch in watches:
            row = await r.store.watches.get(watch_id=watch.id)
            assert (
                row is not None and row.status == "failed" and row.error_code == "invalid_api_key"
            )
            events = await r.store.watches.events(watch_id=watch.id)
            assert [e.type for e in events] == ["watch.failed"]
            assert events[0].payload["data"]["error"]["code"] == "invalid_api_key"
        assert await _refused_since(r.store, "revoked") is None  # a new watch gets its own minute


async def test_poller_a_single_401_fails_nothing_and_a_success_forgets_it(storage_url):
    async with rig(storage_url) as r:
        jobs = [r.sim.create_job(KEY, total_items=1) for _ in range(3)]
        for job_id in jobs:
            r.sim.set_job(job_id, _job(job_id, "processing", [("a", "processing")]))
        watches = [await r.watch(jobs[0])]
        r.sim.script(None, [{"status": 401}], api_key=KEY)  # the key's next poll is refused
        await r.run(1)
        assert await _refused_since(r.store, "main") == T0
        watches += [await r.watch(job_id) for job_id in jobs[1:]]
        await r.run(5)
        assert await _refused_since(r.store, "main") is None  # the other jobs' polls succeeded
        await r.run(55)
        r.sim.script(None, [{"status": 401}], api_key=KEY)  # a minute after the first 401
        await r.run(30)
        for watch in watches:
            row = await r.store.watches.get(watch_id=watch.id)
            assert row is not None and row.status == "active"
            assert "watch.failed" not in [e[1] for e in await r.events(watch.id)]


async def test_poller_fails_a_watch_after_three_404s_over_30_seconds(storage_url):
    async with rig(storage_url) as r:
        watch = await r.watch(str(_uuid(99)))
        await r.run(20)
        row = await r.store.watches.get(watch_id=watch.id)
        assert row is not None and row.status == "active"
        await r.run(40)
        row = await r.store.watches.get(watch_id=watch.id)
        assert row is not None and row.status == "failed" and row.error_code == "job_not_found"
        assert [e[1] for e in await r.events(watch.id)] == ["watch.failed"]


async def test_poller_expires_a_watch_at_its_ttl(storage_url):
    async with rig(storage_url, seconds_per_item=10_000) as r:
        job_id = r.sim.create_job(KEY, total_items=1)
        watch = await r.watch(job_id, ttl_h=0.01)  # 36 s
        await r.run(40)
        row = await r.store.watches.get(watch_id=watch.id)
        assert row is not None and row.status == "expired"
        types = [e[1] for e in await r.events(watch.id)]
        assert types[0] == "job.queued" and types[-1] == "watch.expired"
        gets = r.gets(job_id)
        await r.run(120)
        assert r.gets(job_id) == gets


async def test_poller_never_polls_for_a_cancelled_watch(storage_url):
    async with rig(storage_url) as r:
        job_id = r.sim.create_job(KEY, total_items=1)
        watch = await r.watch(job_id)
        await r.store.watches.cancel(client="shop", watch_id=watch.id, now=r.clock.now())
        await r.run(60)
        assert r.gets(job_id) == 0


def _uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


@pytest.mark.parametrize("status", ["queued", "processing"])
async def test_poller_stretches_an_unchanged_jobs_interval(storage_url, status):
    async with rig(storage_url) as r:
        job_id = r.sim.create_job(KEY, total_items=1)
        r.sim.set_job(job_id, _job(job_id, status, [("a", status)]))
        await r.watch(job_id)
        await r.run(600)
        # 10 s/5 s base, x1.5 while unchanged, capped at 60 s: far fewer polls than 600/base
        base = 10 if status == "queued" else 5
        assert 10 <= r.gets(job_id) < 600 / base / 2


async def test_poller_a_new_watch_gets_its_own_404_retries(storage_url):
    async with rig(storage_url) as r:
        job_id = str(_uuid(77))
        first = await r.watch(job_id)
        await r.run(60)
        row = await r.store.watches.get(watch_id=first.id)
        assert row is not None and row.error_code == "job_not_found"
        second = await r.watch(job_id)
        await r.run(2)  # one more 404: the new watch is not failed by the old watch's count
        row = await r.store.watches.get(watch_id=second.id)
        assert row is not None and row.status == "active"


def failing_for(job_ids: set[str], *, on_calls: set[int] | None = None) -> PollPlanner:
    """plan_poll, except that it raises for `job_ids` (filled in later by the test), on their
    `on_calls`-th plans (1-based) or always."""
    calls: dict[str, int] = {}

    def plan(job, watch_rows, outcome, ctx):
        calls[job.job_id] = calls.get(job.job_id, 0) + 1
        if job.job_id in job_ids and (on_calls is None or calls[job.job_id] in on_calls):
            raise ValueError("a bug in processing this job")
        return plan_poll(job, watch_rows, outcome, ctx)

    return plan


async def test_poller_a_planning_failure_spares_the_rest_of_the_batch(storage_url):
    broken: set[str] = set()
    async with rig(storage_url, plan=failing_for(broken)) as r:
        jobs = [r.sim.create_job(KEY, total_items=1) for _ in range(3)]
        broken.add(jobs[1])
        watches = [await r.watch(job_id) for job_id in jobs]
        await r.run(1)
        assert [bool(await r.events(w.id)) for w in watches] == [True, False, True]


async def test_poller_ends_a_job_whose_processing_fails_three_polls_in_a_row(storage_url):
    broken: set[str] = set()
    async with rig(storage_url, seconds_per_item=10_000, plan=failing_for(broken)) as r:
        jobs = [r.sim.create_job(KEY, total_items=1) for _ in range(3)]
        broken.add(jobs[1])
        watches = [await r.watch(job_id) for job_id in jobs]
        await r.run(30)
        broken = await r.store.watches.get(watch_id=watches[1].id)
        assert broken is not None and broken.status == "active"  # two failures so far
        await r.run(120)
        broken = await r.store.watches.get(watch_id=watches[1].id)
        assert broken is not None and (broken.status, broken.error_code) == (
            "failed",
            "internal_error",
        )
        [event] = await r.store.watches.events(watch_id=watches[1].id)
        assert event.type == "watch.failed"
        assert event.payload["data"]["error"]["code"] == "internal_error"
        assert r.gets(jobs[1]) == 3
        await r.run(300)
        assert r.gets(jobs[1]) == 3  # no more budget spent on it
        for healthy in (watches[0], watches[2]):
            row = await r.store.watches.get(watch_id=healthy.id)
            assert row is not None and row.status == "active"
            assert await r.events(healthy.id)


async def test_poller_a_processed_poll_resets_the_failure_count(storage_url):
    broken: set[str] = set()
    plan = failing_for(broken, on_calls={1, 2, 4, 5})
    async with rig(storage_url, seconds_per_item=10_000, plan=plan) as r:
        job_id = r.sim.create_job(KEY, total_items=1)
        broken.add(job_id)
        watch = await r.watch(job_id)
        await r.run(600)
        assert r.gets(job_id) > 6  # polled on after failing twice, succeeding, failing twice
        row = await r.store.watches.get(watch_id=watch.id)
        assert row is not None and row.status == "active"
        types = [e[1] for e in await r.events(watch.id)]
        assert types and "watch.failed" not in types


async def test_poller_a_job_whose_rows_cannot_be_written_fails_alone(pg_url):
    # PostgreSQL refuses a 70-character status for its 64-character column: the batch's write
    # fails on one job's data, is redone job by job, and only that job counts a failure.
    async with rig(pg_url, seconds_per_item=10_000) as r:
        jobs = [r.sim.create_job(KEY, total_items=1) for _ in range(3)]
        r.sim.set_job(jobs[1], _job(jobs[1], "processing_" + "x" * 59, [("a", "queued")]))
        watches = [await r.watch(job_id) for job_id in jobs]
        await r.run(1)
        assert [bool(await r.events(w.id)) for w in watches] == [True, False, True]
        await r.run(150)
        broken = await r.store.watches.get(watch_id=watches[1].id)
        assert broken is not None and broken.error_code == "internal_error"
        assert r.gets(jobs[1]) == 3


@pytest.mark.parametrize("rounds", [1, 3])
async def test_poller_overlapped_batches_poll_each_due_job_once_within_budget(storage_url, rounds):
    """Batches of 2 overlapping up to 3 deep: more than one batch in one call while they come
    full, each job polled once, and no account past its burst of 3 (its budget decides each claim
    counting the polls in flight)."""
    async with rig(storage_url, batch=2, rounds=rounds, seconds_per_item=10_000) as r:
        jobs = [r.sim.create_job(key, total_items=1) for key in (KEY, OTHER_KEY) for _ in range(4)]
        watches = [
            await r.watch(j, account="main" if n < 4 else "other") for n, j in enumerate(jobs)
        ]
        polled = await r.poller.poll_due(r.clock.now())
        assert polled == 2 if rounds == 1 else 2 < polled <= 6
        gets = [r.gets(j) for j in jobs]
        assert sorted(gets) == [0] * (8 - polled) + [1] * polled
        assert sum(gets[:4]) <= 3 and sum(gets[4:]) <= 3  # BURST polls an account at one instant
        firsts = [await r.events(w.id) for w, n in zip(watches, gets, strict=True) if n]
        assert all(events and events[0][0] == 1 for events in firsts)
        assert sum(len(e) for e in firsts) == len(
            {(i, e) for i, es in enumerate(firsts) for e in es}
        )
