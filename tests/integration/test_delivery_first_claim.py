"""A burst's first claim is small, so its first webhooks go out while the next claim reads more
(reading and leasing 512 rows of a backlog took 20-40 ms before anything was sent)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.clock import utcnow
from bridge.delivery import signing
from bridge.delivery.deliverer import FIRST_CLAIM
from bridge.delivery.http import open_http
from bridge.devtools.localserver import serving
from bridge.store import open_store
from bridge.store.tables import deliveries
from tests.integration.delivery_support import deliverer_for, delivery_config
from tests.integration.outbox_rows import add_events, add_watch

WATCHES = 100  # each with one event due: 100 rows may go at once


async def test_the_first_claim_of_a_burst_takes_first_claim_rows_and_the_next_the_rest(
    storage_url,
):
    secret = signing.new_secret()
    answer = asyncio.Event()  # the receiver holds every request until the end

    async def hook(request: Request) -> Response:
        await answer.wait()
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    settings = delivery_config(secret, timeout_s=30, retry_schedule_s=[1], api_key="aigen_test_f")
    store = await open_store(storage_url)
    try:
        async with serving(app) as server, open_http() as http:
            deliverer = deliverer_for(
                settings, store, http, on_free=lambda: None, owner="first", seed=1
            )
            now = utcnow()
            for _ in range(WATCHES):
                watch = await add_watch(store, at=now, webhook_url=server.url + "/hook")
                await add_events(store, watch, count=1, at=now)

            first = await deliverer.dispatch_due()
            assert first == FIRST_CLAIM < WATCHES  # and more may be due: the step runs again
            second = await deliverer.dispatch_due()
            assert second == 0  # the other 36 were claimed; nothing more is due

            answer.set()  # the held rows go out in turn, as the lane frees places
            async with asyncio.timeout(30):
                while await _delivered(store) < WATCHES:
                    await asyncio.sleep(0.02)
            await deliverer.aclose(timeout_s=30)
    finally:
        await store.close()


async def _delivered(store) -> int:
    async with store.db.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(deliveries).where(deliveries.c.status == "delivered")
        )
    return int(count or 0)
