"""One slow receiver must not delay anyone else (issue 9, item 10).

Ten receivers on 127.0.0.1 accept connections and never answer; a healthy receiver verifies every
webhook. The deliverer runs as `serve` runs it (the scheduler calls `dispatch_due`, a freed slot
nudges it) while events flow to every watch; the healthy watch's commit-to-receipt p99 stays under
1 s, and no hanging receiver ever holds more than its destination's share of the sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.background import Background
from bridge.clock import utcnow
from bridge.config import Config
from bridge.delivery import signing
from bridge.delivery.deliverer import PER_DESTINATION
from bridge.devtools.localserver import serving
from bridge.store import Store, WatchRecord, open_store
from tests.integration.delivery_support import deliverer_for, delivery_config, signed_by
from tests.integration.outbox_rows import add_events, add_watch

pytestmark = pytest.mark.slow

HANGING = 10
WATCHES_PER_HANGING = 6  # more than a destination's PER_DESTINATION sends
EVENTS = 50
BACKLOG = 5  # events waiting on each hanging watch
EVERY_S = 0.1  # one healthy event this often: 5 s of traffic, over two send timeouts
TIMEOUT_S = 2.0


@dataclass
class Hanging:
    """Accepts a connection, reads the request, never answers; counts open connections."""

    release: asyncio.Event
    url: str = ""
    open: int = 0
    most: int = 0
    accepted: int = 0
    handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.open += 1
        self.accepted += 1
        self.most = max(self.most, self.open)
        try:
            closed = asyncio.ensure_future(reader.read())  # b"" once the sender gives up
            released = asyncio.ensure_future(self.release.wait())
            await asyncio.wait({closed, released}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (closed, released):
                waiter.cancel()
        finally:
            self.open -= 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@dataclass
class Healthy:
    """Verifies each webhook with `standardwebhooks` and notes when each event arrived."""

    secret: str
    arrived: dict[str, float] = field(default_factory=dict)
    bad: int = 0

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        if not signed_by(self.secret, body, request.headers):
            self.bad += 1
            return Response(status_code=401)
        self.arrived.setdefault(request.headers["webhook-id"], time.monotonic())
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def hanging_receivers(count: int) -> AsyncIterator[list[Hanging]]:
    release = asyncio.Event()
    receivers = [Hanging(release) for _ in range(count)]
    servers = []
    try:
        for receiver in receivers:
            server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            receiver.url = f"http://127.0.0.1:{port}/hook"
            servers.append(server)
        yield receivers
    finally:
        release.set()
        for server in servers:
            server.close()
            await server.wait_closed()
        # Every connection is closed before the test's loop is: no transport is left to the GC.
        await asyncio.gather(*(t for r in receivers for t in r.handlers), return_exceptions=True)


def config(secret: str) -> Config:
    # The hanging ones are tried again and again.
    return delivery_config(
        secret, timeout_s=TIMEOUT_S, retry_schedule_s=[0.2] * 30, api_key="aigen_test_isolation"
    )


async def healthy_traffic(
    store: Store, watch: WatchRecord, *, nudge: Callable[[], None]
) -> dict[str, float]:
    """Commit the healthy watch's events at a steady pace; returns event id -> commit time."""
    committed: dict[str, float] = {}
    for sequence in range(1, EVENTS + 1):
        [event_id] = await add_events(store, watch, count=1, first=sequence, at=utcnow())
        committed[event_id] = time.monotonic()
        nudge()  # as the poller does once its events are committed
        await asyncio.sleep(EVERY_S)  # the pace of the traffic, not a synchronisation
    return committed


async def test_hanging_receivers_do_not_delay_a_healthy_one(storage_url):
    secret = signing.new_secret()
    settings = config(secret)
    healthy = Healthy(secret)
    app = Starlette(routes=[Route("/hook", healthy.hook, methods=["POST"])])
    store = await open_store(storage_url)
    work = Background()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=64)  # as `serve`'s
    async with (
        hanging_receivers(HANGING) as hanging,
        serving(app) as good,
        httpx.AsyncClient(trust_env=False, limits=limits, follow_redirects=False) as http,
    ):
        deliverer = deliverer_for(
            settings, store, http, on_free=lambda: work.nudge("deliver"), owner="isolation", seed=3
        )
        now = utcnow()
        stuck = [
            await add_watch(store, at=now, webhook_url=receiver.url)
            for receiver in hanging
            for _ in range(WATCHES_PER_HANGING)
        ]
        for other in stuck:  # a backlog for each, every event due at once behind its first
            await add_events(store, other, count=BACKLOG, at=now)
        watch = await add_watch(store, at=now, webhook_url=good.url + "/hook")
        work.start({"deliver": (deliverer.dispatch_due, 1.0)})
        try:
            async with asyncio.timeout(30):  # the hanging receivers hold their sends first
                while sum(r.open for r in hanging) < HANGING * PER_DESTINATION:
                    await asyncio.sleep(0.01)
            committed = await healthy_traffic(store, watch, nudge=lambda: work.nudge("deliver"))
            deadline = time.monotonic() + 30  # what has not arrived by then counts as never
            while len(healthy.arrived) < EVENTS and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await work.stop()
            await deliverer.aclose(timeout_s=TIMEOUT_S + 5)
            await store.close()

    assert healthy.bad == 0
    latencies = sorted(healthy.arrived.get(e, math.inf) - at for e, at in committed.items())
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    assert p99 < 1.0, f"healthy p99 {p99:.2f} s; p50 {latencies[len(latencies) // 2]:.2f} s"
    for receiver in hanging:
        assert receiver.accepted > PER_DESTINATION  # they were tried throughout
        assert receiver.most == PER_DESTINATION  # and never held more than their share
