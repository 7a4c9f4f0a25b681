"""The operator API's figures after real work: accounts' budgets after polls against the simulator,
a channel's health after a delivery a real receiver refused, then accepted."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bridge.app import create_app
from bridge.config import Config, parse_config
from bridge.delivery.channels.registry import ChannelRegistry
from bridge.delivery.deliverer import Deliverer
from bridge.devtools.localserver import serving
from bridge.devtools.simulator import KeyLimits, Simulator, SimulatorSettings, create_simulator
from bridge.events.routing import Router
from bridge.ops.metrics import Metrics
from bridge.polling.poller import Poller
from bridge.polling.pool import UpstreamPool
from bridge.rendering import Renderer
from bridge.store import Store, open_store
from bridge.store.tables import account_budgets, poll_log
from tests.clock import FakeClock
from tests.integration.api_support import NOW, WHSEC

KEY = "aigen_test_ops_figures"
IDLE_KEY = "aigen_test_ops_idle"
SHOP = "shop-token-figures-1"
OPS = "ops-token-figures-000001"
SIM_POLLS_PER_HOUR = 5000


@dataclass
class Hook:
    """A receiver that answers each request with the next queued status, then 200."""

    answers: list[int] = field(default_factory=list)
    hits: int = 0

    async def answer(self, request: Request) -> Response:
        await request.body()
        self.hits += 1
        status = self.answers.pop(0) if self.answers else 200
        return PlainTextResponse("ok", status_code=status)


@dataclass
class Bridge:
    clock: FakeClock
    sim: Simulator
    store: Store
    poller: Poller
    deliverer: Deliverer
    hook: Hook
    http: httpx.AsyncClient

    async def ops(self, path: str) -> Any:
        response = await self.http.get(path, headers={"Authorization": f"Bearer {OPS}"})
        assert response.status_code == 200, response.text
        return response.json()

    async def poll_for(self, seconds: int) -> None:
        for _ in range(seconds):
            await self.poller.poll_due(self.clock())
            self.clock.advance(seconds=1)


def _config(sim_url: str, hook_url: str, storage_url: str) -> Config:
    return parse_config(
        f"""
storage: {{url: "{storage_url}"}}
upstream:
  base_url: "{sim_url}"
  timeout_s: 2
  transport: httpx
  accounts:
    main: {{api_key: {KEY}, polls_per_hour: 3600, max_concurrency: 2}}
    idle: {{api_key: {IDLE_KEY}, polls_per_hour: 60}}
polling: {{queued_interval_s: 5, processing_interval_s: 5, max_interval_s: 60}}
clients:
  shop: {{token: {SHOP}, accounts: [main, idle]}}
operators:
  ops: {{token: {OPS}}}
channels:
  ops-hook: {{type: webhook, url: "{hook_url}/hook", secret: "{WHSEC}"}}
  quiet-hook: {{type: webhook, url: "{hook_url}/quiet", secret: "{WHSEC}"}}
routes:
  - {{events: ["job.*"], channels: [ops-hook]}}
delivery: {{timeout_s: 2, retry_schedule_s: [30, 300], allowed_hosts: ["127.0.0.1"]}}
""",
        env={},
    )


@contextlib.asynccontextmanager
async def bridge(storage_url: str) -> AsyncIterator[Bridge]:
    clock = FakeClock(NOW)
    hook = Hook()
    limits = KeyLimits(polls_per_hour=SIM_POLLS_PER_HOUR, max_active_jobs=5)
    sim_app = create_simulator(
        SimulatorSettings(
            keys={KEY: limits, IDLE_KEY: limits},
            queue_delay_s=3.0,
            seconds_per_item=600.0,
            failure_rate=0.0,
            now=clock,
        )
    )
    hook_app = Starlette(routes=[Route("/hook", hook.answer, methods=["POST"])])
    async with (
        serving(sim_app) as sim_server,
        serving(hook_app) as hook_server,
        httpx.AsyncClient(trust_env=False) as sender,
    ):
        config = _config(sim_server.url, hook_server.url, storage_url)
        store = await open_store(config.storage.url)
        upstream = UpstreamPool(config)
        metrics = Metrics()
        poller = Poller(
            store=store,
            upstream=upstream,
            accounts=config.upstream.accounts,
            polling=config.polling,
            router=Router.from_config(config),
            timeout_s=config.upstream.timeout_s,
            metrics=metrics,
            now=clock,
            owner="figures",
        )
        registry = ChannelRegistry(
            config=config, http=sender, state=store.channel_state, renderer=Renderer(), now=clock
        )
        deliverer = Deliverer(
            store=store,
            channels=registry,
            settings=config.delivery,
            metrics=metrics,
            now=clock,
            owner="figures",
        )
        app = create_app(config, store=store, now=clock, background=False)
        await poller.start()
        try:
            async with serving(app) as api, httpx.AsyncClient(base_url=api.url) as http:
                yield Bridge(clock, sim_app.state.simulator, store, poller, deliverer, hook, http)
        finally:
            await deliverer.aclose()
            await upstream.aclose()
            await store.close()


async def _watch(b: Bridge, job_id: str) -> str:
    response = await b.http.post(
        "/v1/watches",
        json={"job_id": job_id, "account": "main"},
        headers={"Authorization": f"Bearer {SHOP}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["watch"]["id"])


async def _stored_budget(store: Store, account: str, now: Any) -> tuple[int, Any]:
    async with store.db.engine.connect() as conn:
        polls = (
            await conn.execute(
                select(func.count()).where(
                    poll_log.c.account == account, poll_log.c.at > now - timedelta(hours=1)
                )
            )
        ).scalar_one()
        row = (
            await conn.execute(select(account_budgets).where(account_budgets.c.account == account))
        ).one()
    return polls, row


async def test_ops_accounts_count_the_polls_the_store_counted(storage_url: str) -> None:
    async with bridge(storage_url) as b:
        jobs = [b.sim.create_job(KEY, total_items=3) for _ in range(2)]
        for job_id in jobs:
            await _watch(b, job_id)
        await b.poll_for(30)
        accounts = {a["name"]: a for a in (await b.ops("/v1/ops/accounts"))["accounts"]}
        polled_at = b.clock()
        polls, row = await _stored_budget(b.store, "main", polled_at)
        gets = sum(b.sim.stats()["jobs"][job_id]["gets"] for job_id in jobs)
        b.clock.advance(minutes=61)
        an_hour_on = (await b.ops("/v1/ops/accounts"))["accounts"][0]
    assert polls >= 6  # each job polled several times in 30 s
    assert polls == gets  # what the store counted is what the upstream served
    assert row.remaining is not None and row.reset_at > polled_at
    assert accounts["main"] == {
        "name": "main",
        "polls_last_hour": polls,
        "polls_per_hour": 3600,
        "upstream_remaining": row.remaining,
        "paused_until": None,
        "active_jobs": 2,
    }
    assert row.remaining == SIM_POLLS_PER_HOUR - gets  # the upstream's own count, in step
    assert accounts["idle"] == {
        "name": "idle",
        "polls_last_hour": 0,
        "polls_per_hour": 60,
        "upstream_remaining": None,
        "paused_until": None,
        "active_jobs": 0,
    }
    assert an_hour_on["polls_last_hour"] == 0  # the rolling hour has passed
    assert an_hour_on["active_jobs"] == 2


async def _deliver_all(b: Bridge) -> None:
    for _ in range(20):
        if await b.deliverer.deliver_due() == 0:
            return
    raise AssertionError("delivery never ran dry")


async def test_ops_channels_show_a_real_failure_then_the_recovery(storage_url: str) -> None:
    async with bridge(storage_url) as b:
        await _watch(b, b.sim.create_job(KEY, total_items=3))
        await b.poll_for(2)  # job.queued
        b.hook.answers = [500]
        failed_at = b.clock()
        await _deliver_all(b)
        failing = {c["name"]: c for c in (await b.ops("/v1/ops/channels"))["channels"]}
        listed = await b.ops("/v1/ops/deliveries?channel=ops-hook&status=pending")
        b.clock.advance(seconds=60)
        recovered_at = b.clock()
        await _deliver_all(b)
        recovered = {c["name"]: c for c in (await b.ops("/v1/ops/channels"))["channels"]}
    assert b.hook.hits == 2
    assert failing["ops-hook"] == {
        "name": "ops-hook",
        "type": "webhook",
        "pending": 1,
        "dead": 0,
        "last_delivered_at": None,
        "last_error": failing["ops-hook"]["last_error"],
        "last_error_at": failed_at.isoformat().replace("+00:00", "Z"),
    }
    assert "500" in failing["ops-hook"]["last_error"]
    [delivery] = listed["deliveries"]
    assert (delivery["last_status_code"], delivery["attempts"]) == (500, 1)
    assert recovered["ops-hook"] == {
        "name": "ops-hook",
        "type": "webhook",
        "pending": 0,
        "dead": 0,
        "last_delivered_at": recovered_at.isoformat().replace("+00:00", "Z"),
        "last_error": None,
        "last_error_at": None,
    }
    assert recovered["quiet-hook"] == {
        "name": "quiet-hook",
        "type": "webhook",
        "pending": 0,
        "dead": 0,
        "last_delivered_at": None,
        "last_error": None,
        "last_error_at": None,
    }
