"""The simulator's own signed webhooks, over real HTTP: the bridge's verifier accepts them, the bridge
moves the signalled job forward, and a receiver that fails never holds the simulator up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.api.aigen_signature import SignatureProblem, verify_aigen_signature
from bridge.app import create_app
from bridge.config import parse_config
from bridge.devtools.localserver import serving
from bridge.devtools.simulator import KeyLimits, Simulator, SimulatorSettings, create_simulator
from bridge.devtools.simulator.sender import WebhookSender
from bridge.store import open_store
from bridge.store.tables import upstream_jobs
from tests.clock import FakeClock

KEY = "aigen_test_simulator"
OTHER = "aigen_live_other"
START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
JOB = "0b6f4a8e-2f7e-4c1a-9d7e-1c2b3a4d5e6f"
PLAIN_HTTP = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@dataclass
class Upstream:
    sim: Simulator
    webhooks: WebhookSender
    client: httpx.AsyncClient
    clock: FakeClock


@contextlib.asynccontextmanager
async def upstream(clock: FakeClock, **settings: Any) -> AsyncIterator[Upstream]:
    settings.setdefault("keys", {KEY: KeyLimits(max_active_jobs=5), OTHER: KeyLimits()})
    settings.setdefault("webhook_interval_s", 3600)  # the test calls send_due() itself
    app = create_simulator(SimulatorSettings(now=clock, **settings))
    async with (
        serving(app) as server,
        httpx.AsyncClient(base_url=server.url, timeout=5, verify=PLAIN_HTTP) as client,
    ):
        yield Upstream(app.state.simulator, app.state.webhooks, client, clock)


@dataclass
class Receiver:
    """Checks each webhook with the bridge's own verifier; /slow hangs, /broken answers 500."""

    clock: Callable[[], datetime]
    key: str = KEY
    verified: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            verify_aigen_signature(
                api_key=self.key, headers=request.headers, body=body, now=self.clock()
            )
        except SignatureProblem as exc:
            self.refused.append(str(exc))
            return Response(status_code=401)
        self.verified.append((dict(request.headers), body))
        return Response(status_code=204)

    async def slow(self, request: Request) -> Response:
        self.hits["slow"] = self.hits.get("slow", 0) + 1
        await self.release.wait()
        return Response(status_code=204)

    async def broken(self, request: Request) -> Response:
        self.hits["broken"] = self.hits.get("broken", 0) + 1
        return Response(status_code=500)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/hook", self.hook, methods=["POST"]),
                Route("/slow", self.slow, methods=["POST"]),
                Route("/broken", self.broken, methods=["POST"]),
            ]
        )


async def _create(up: Upstream, *, webhook_url: str, count: int = 3) -> httpx.Response:
    images = [{"source_url": "https://shop.example/0.jpg", "external_id": "sku-0"}]
    images += [{"source_url": f"https://shop.example/{n}.jpg"} for n in range(1, count)]
    return await up.client.post(
        "/product-photo-jobs",
        json={"images": images, "webhook_url": webhook_url, "preset": "marketplace_clean_catalog"},
        headers={"Authorization": f"Bearer {KEY}", "Idempotency-Key": "catalog-0001"},
    )


async def _wait_for(condition: Callable[[], bool], *, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_simulator_webhooks_pass_the_bridge_signature_check():
    clock = FakeClock(START)
    receiver = Receiver(clock)
    settings = {"queue_delay_s": 1, "seconds_per_item": 2, "failure_rate": 0.5, "seed": 0}
    async with serving(receiver.app()) as hooks, upstream(clock, **settings) as up:
        created = await _create(up, webhook_url=f"{hooks.url}/hook")
        job_id = created.json()["job"]["id"]
        sent = [await up.webhooks.send_due()]  # still queued: nothing to tell
        for seconds in (1, 2, 4, 10):
            clock.advance(seconds)
            sent.append(await up.webhooks.send_due())
        final = (await up.client.get(f"/_sim/jobs/{job_id}")).json()["job"]
        cancelled = up.sim.create_job(KEY, total_items=1, webhook_url=f"{hooks.url}/hook")
        up.sim.set_job(cancelled, {"id": cancelled, "status": "cancelled", "total_items": 1})
        sent.append(await up.webhooks.send_due())
        sent.append(await up.webhooks.send_due())  # each change is told once
        for _ in range(2):  # the first poll after a webhook is counted as one that followed it
            await up.client.get(
                f"/product-photo-jobs/{job_id}", headers={"Authorization": f"Bearer {KEY}"}
            )
        stats = up.sim.stats()["webhooks"]
    assert sent == [0, 1, 1, 3, 0, 1, 0]
    assert receiver.refused == []
    events = [
        (headers, httpx.Response(200, content=body).json()) for headers, body in receiver.verified
    ]
    item_statuses = [i["status"] for i in final["items"]]
    assert [event["type"] for _, event in events] == [
        "product_photo_job.processing",
        *(f"product_photo_job.item.{status}" for status in item_statuses),
        f"product_photo_job.{final['status']}",
        "product_photo_job.cancelled",
    ]
    assert final["status"] == "partially_completed"
    for headers, event in events:
        assert headers["x-aigen-event-id"] == event["id"] and event["id"].startswith("evt_")
        assert int(headers["x-aigen-timestamp"]) == int(
            datetime.fromisoformat(event["created_at"]).timestamp()
        )
        assert headers["x-aigen-signature"].startswith("v1=")
    assert len({event["id"] for _, event in events}) == len(events)
    first_item = events[1][1]["data"]
    assert first_item["job"]["id"] == job_id and "items" not in first_item["job"]
    assert first_item["item"]["external_id"] == "sku-0"
    assert events[-1][1]["data"]["job"]["id"] == cancelled
    assert stats == {"delivered": 6, "failed": 0, "polls_after": 1}


async def test_simulator_webhook_signature_is_bound_to_the_key_and_body():
    clock = FakeClock(START)
    receiver = Receiver(clock, key="aigen_test_someone_else")
    async with serving(receiver.app()) as hooks, upstream(clock) as up:
        up.sim.create_job(KEY, total_items=1, webhook_url=f"{hooks.url}/hook")
        clock.advance(1)
        delivered = await up.webhooks.send_due()
    assert delivered == 0
    assert receiver.refused == ["X-Aigen-Signature does not match"]


async def test_simulator_webhook_failures_are_logged_and_dropped_without_blocking(caplog):
    caplog.set_level(logging.WARNING, logger="bridge.devtools.simulator.sender")
    clock = FakeClock(START)
    receiver = Receiver(clock)
    settings = {"webhook_interval_s": 0.02, "webhook_timeout_s": 0.5, "queue_delay_s": 1}
    async with serving(receiver.app()) as hooks, upstream(clock, **settings) as up:
        slow = up.sim.create_job(KEY, total_items=1, webhook_url=f"{hooks.url}/slow")
        up.sim.create_job(KEY, total_items=1, webhook_url=f"{hooks.url}/broken")
        up.sim.create_job(KEY, total_items=1, webhook_url="http://127.0.0.1:9/closed")
        clock.advance(1)  # all three start processing; the background sender tells them
        await _wait_for(lambda: receiver.hits.get("slow") == 1)
        started = time.monotonic()
        answer = await up.client.get(
            f"/product-photo-jobs/{slow}", headers={"Authorization": f"Bearer {KEY}"}
        )
        answered_in = time.monotonic() - started
        await _wait_for(lambda: up.sim.stats()["webhooks"]["failed"] == 3)
        again = await up.webhooks.send_due()
        receiver.release.set()
    assert answer.status_code == 200 and answered_in < 0.4  # the hanging receiver held nothing up
    assert again == 0 and receiver.hits == {"slow": 1, "broken": 1}  # dropped, never retried
    problems = sorted(r.problem for r in caplog.records if r.msg.startswith("simulator webhook"))
    assert problems == ["ConnectError", "HTTP 500", "ReadTimeout"]
    assert KEY not in caplog.text


def _bridge_config(tmp_path: Any, *, upstream_url: str) -> Any:
    return parse_config(
        f"""
storage: {{url: "sqlite:///{tmp_path}/b.db"}}
upstream: {{base_url: "{upstream_url}", accounts: {{main: {{api_key: {KEY}}}}}}}
clients: {{shop: {{token: shop-token-123, accounts: [main]}}}}
""",
        env={},
    )


async def test_simulator_webhook_moves_the_bridge_s_watched_job_forward(tmp_path):
    clock = FakeClock(START)
    async with upstream(clock, queue_delay_s=1) as up:
        config = _bridge_config(tmp_path, upstream_url=str(up.client.base_url))
        store = await open_store(config.storage.url)
        await store.watches.create(client="shop", account="main", job_id=JOB, webhook_url=None,
                                   events=["*"], metadata={}, idempotency_key=None, now=START,
                                   ttl=timedelta(hours=1))  # fmt: skip
        async with store.db.engine.begin() as conn:  # as if polled: next due in a minute
            await conn.execute(
                sa.update(upstream_jobs).values(
                    priority=0, next_poll_at=START + timedelta(minutes=1)
                )
            )
        app = create_app(config, store=store, now=clock, background=False)
        try:
            async with serving(app) as bridge:
                signals = f"{bridge.url}/upstream/main/signals"
                up.sim.create_job(KEY, total_items=2, job_id=JOB, webhook_url=signals)
                up.sim.create_job(OTHER, total_items=1, webhook_url=signals)  # not main's key
                clock.advance(1)  # both jobs start processing
                delivered = await up.webhooks.send_due()
                watch = (
                    await store.watches.page(client="shop", status=None, limit=1, cursor=None)
                )[0][0]
                metrics = (await up.client.get(f"{bridge.url}/metrics")).text
        finally:
            await store.close()
        stats = up.sim.stats()["webhooks"]
    assert delivered == 1  # the bridge refused the signal signed with OTHER's key
    assert stats == {"delivered": 1, "failed": 1, "polls_after": 0}
    assert watch.next_poll_at == START + timedelta(seconds=1)  # due now, not in a minute
    assert 'bridge_upstream_signals_total{account="main",polled_soon="true"} 1.0' in metrics
