"""Discovery against the simulator: a discovering account's queued and processing jobs are listed
page by page, watched by the client "discovery" and polled; later jobs are found at the next round;
a signal for an unknown job watches it at once; other accounts are never listed."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import sqlalchemy as sa

from bridge.api.aigen_signature import expected_signature
from bridge.config import Config
from bridge.config.refs import DISCOVERY_CLIENT
from bridge.store import open_store
from bridge.store.tables import account_budgets, watches
from tests.integration.api_support import NOW
from tests.integration.console_support import running_console
from tests.integration.discovery_support import KEYS, rig

MAIN, QUIET, SUBBED = KEYS["main"], KEYS["quiet"], KEYS["subbed"]


def _jobs(sim, key: str, count: int, *, items: int = 5) -> list[str]:
    return [sim.create_job(key, total_items=items) for _ in range(count)]


async def test_discovery_watches_every_queued_and_processing_job_across_pages(storage_url):
    async with rig(storage_url, page_size=2) as r:
        done = _jobs(r.sim, MAIN, 1, items=1)  # ends long before the first round
        r.clock.advance(seconds=700)
        processing = _jobs(r.sim, MAIN, 3)
        r.clock.advance(seconds=610)  # past the queue delay: these three are processing now
        queued = _jobs(r.sim, MAIN, 4)
        _jobs(r.sim, QUIET, 2)
        assert r.sim.peek(done[0])["status"] == "completed"
        assert {r.sim.peek(j)["status"] for j in processing} == {"processing"}

        await r.finish_round()

        assert await r.discovered_jobs() == {*processing, *queued}
        # 4 queued jobs on 2 pages, then 3 processing jobs on 2 pages
        assert len(r.transport.lists(MAIN)) == 4
        found = await r.discovered()
        assert {(w.client, w.webhook_url, w.events) for w in found} == {
            (DISCOVERY_CLIENT, None, ("*",))
        }
        assert all(w.next_poll_at == w.created_at for w in found)  # each due at once

        await r.run(20)  # the poller takes the new watches first
        for job_id in (*processing, *queued):
            assert r.sim.stats()["jobs"][job_id]["gets"] >= 1
        for watch in found:  # each discovered watch heard its job's state, as any watch does
            assert await r.store.watches.events(watch_id=watch.id)
        assert r.transport.sent[QUIET] == []  # neither discover: true nor subscribed
        assert r.transport.sent[SUBBED] == []


async def test_discovery_finds_a_later_job_at_the_next_interval(storage_url):
    async with rig(storage_url, interval_s=300) as r:
        first = _jobs(r.sim, MAIN, 2)
        await r.finish_round()
        assert await r.discovered_jobs() == set(first)
        lists = len(r.transport.lists(MAIN))

        later = _jobs(r.sim, MAIN, 1)
        await r.run(200, step=5, poll=False)  # within the interval: no listing
        assert len(r.transport.lists(MAIN)) == lists
        assert await r.discovered_jobs() == set(first)

        await r.run(120, step=5, poll=False)  # past it: the next round finds the new job
        assert await r.discovered_jobs() == {*first, *later}
        assert len(await r.discovered()) == 3  # the known ones were not watched again
        metric = r.discoverer.metrics.discovered.labels("main")._value.get()
        assert metric == 3


async def test_discovery_lists_a_subscribed_account(storage_url):
    async with rig(storage_url) as r:
        jobs = _jobs(r.sim, KEYS["subbed"], 2)
        await r.finish_round()
        assert await r.discovered_jobs("subbed") == set()
        await r.store.subscriptions.subscribe(
            team_id="T1", channel_id="C1", kind="account", target="subbed", account="subbed",
            events=["*"], created_by="U1", now=r.clock(),
        )  # fmt: skip
        r.book.replace(await r.store.subscriptions.current())
        await r.finish_round()
        assert await r.discovered_jobs("subbed") == set(jobs)


async def test_discovery_a_429_on_a_listing_pauses_the_account(storage_url):
    async with rig(storage_url, sim_polls_per_hour=3, page_size=1) as r:
        _jobs(r.sim, MAIN, 4)  # four pages of queued jobs
        await r.discoverer.discover_due(r.clock())
        assert len(r.transport.sent[MAIN]) == 1
        # Someone else spends the key's last two requests: the bridge's next one is refused.
        async with httpx.AsyncClient(base_url=r.sim_url) as other:
            for _ in range(2):
                spent = await other.get(
                    "/product-photo-jobs", headers={"Authorization": f"Bearer {MAIN}"}
                )
                assert spent.status_code == 200
        await r.run(10, poll=False)
        assert len(r.transport.sent[MAIN]) == 2
        assert r.sim.stats()["keys"][MAIN]["rate_limited"] == 1
        async with r.store.db.engine.connect() as conn:
            paused = await conn.scalar(
                sa.select(account_budgets.c.paused_until).where(account_budgets.c.account == "main")
            )
        assert paused is not None and paused > r.clock() + timedelta(minutes=50)  # Retry-After
        await r.run(600, step=10)  # nothing more is asked while paused, polls included
        assert len(r.transport.sent[MAIN]) == 2
        assert r.discoverer.rounds  # the round waits to ask for that page again


async def test_discovery_watch_is_made_once_however_many_race(storage_url):
    async with rig(storage_url) as r:
        job_id = _jobs(r.sim, MAIN, 1)[0]
        other = await open_store(storage_url)  # a second replica's connections
        try:
            made = await asyncio.gather(
                *(
                    store.discovery.watch(
                        client=DISCOVERY_CLIENT, account="main", job_ids=[job_id],
                        now=r.clock(), ttl=timedelta(hours=1),
                    )
                    for store in (r.store, other, r.store, other)
                )
            )  # fmt: skip
        finally:
            await other.close()
        assert sum(len(m) for m in made) == 1
        await r.finish_round()
        async with r.store.db.engine.connect() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count()).select_from(watches).where(watches.c.job_id == job_id)
            )
        assert count == 1


def _signed(body: bytes, key: str) -> dict[str, str]:
    timestamp = str(int(NOW.timestamp()))
    return {
        "X-Aigen-Signature": expected_signature(
            api_key=key, timestamp=timestamp, event_id="evt_up_9", body=body
        ),
        "X-Aigen-Timestamp": timestamp,
        "X-Aigen-Event-Id": "evt_up_9",
        "Content-Type": "application/json",
    }


def _main_discovers(config: Config) -> Config:
    accounts = dict(config.upstream.accounts)
    accounts["main"] = accounts["main"].model_copy(update={"discover": True})
    upstream = config.upstream.model_copy(update={"accounts": accounts})
    return config.model_copy(update={"upstream": upstream})


async def test_discovery_signal_for_an_unknown_job_watches_it_at_once(storage_url):
    job_id = "0b6f4a8e-2f7e-4c1a-9d7e-1c2b3a4d5e6f"
    async with running_console(storage_url, edit_config=_main_discovers) as console:
        api = console.api
        body = json.dumps({"type": "job.updated", "data": {"job": {"id": job_id}}}).encode()
        for account, key, watched in (
            ("second", "aigen_test_second", False),  # an account without discovery
            ("main", "aigen_test_main", True),
        ):
            answer = await api.http.post(
                f"/upstream/{account}/signals", content=body, headers=_signed(body, key)
            )
            assert answer.status_code == 202
            assert answer.json()["polled_soon"] is watched
        found, _ = await api.store.watches.page(
            client=DISCOVERY_CLIENT, status=None, limit=10, cursor=None
        )
        assert [(w.account, w.job_id, w.next_poll_at) for w in found] == [("main", job_id, NOW)]
        again = await api.http.post(
            "/upstream/main/signals", content=body, headers=_signed(body, "aigen_test_main")
        )
        assert again.json()["polled_soon"] is True  # now watched: moved up, not watched twice
        assert len((await api.store.watches.page(client=DISCOVERY_CLIENT, status=None,
                                                 limit=10, cursor=None))[0]) == 1  # fmt: skip

        # The console shows the discovered job like any watch, owned by "discovery".
        overview = (await console.page("/console/")).text
        assert job_id in overview and DISCOVERY_CLIENT in overview
        page = (await console.page(f"/console/watches/{found[0].id}")).text
        assert job_id in page and DISCOVERY_CLIENT in page
        operator = await api.http.get(f"/v1/watches/{found[0].id}", headers=api.auth("ops"))
        assert operator.status_code == 200 and operator.json()["watch"]["job_id"] == job_id


async def test_discovery_signal_never_reopens_a_job_a_client_watched(storage_url):
    # A client's watch that ended leaves the job final; a late signal (in another spelling of the
    # same UUID) is no reason for discovery to watch it again.
    job_id = "1c7f4a8e-2f7e-4c1a-9d7e-1c2b3a4d5e6f"
    async with running_console(storage_url, edit_config=_main_discovers) as console:
        api = console.api
        created = await api.create("shop", job_id=job_id)
        watch_id = created.json()["watch"]["id"]
        cancelled = await api.http.delete(f"/v1/watches/{watch_id}", headers=api.auth())
        assert cancelled.status_code == 200
        spelled = "{" + job_id.upper() + "}"
        body = json.dumps({"type": "job.updated", "data": {"job": {"id": spelled}}}).encode()
        answer = await api.http.post(
            "/upstream/main/signals", content=body, headers=_signed(body, "aigen_test_main")
        )
        assert answer.status_code == 202
        assert answer.json()["polled_soon"] is False
        found, _ = await api.store.watches.page(
            client=DISCOVERY_CLIENT, status=None, limit=10, cursor=None
        )
        assert found == []
