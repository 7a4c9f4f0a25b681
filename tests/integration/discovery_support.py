"""Shared pieces for the discovery tests: the simulator on loopback, a poller and a discoverer on one
store with a fake clock, and a transport that records every upstream request per API key."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random

import httpx

from bridge.config import Config, parse_config
from bridge.config.refs import DISCOVERY_CLIENT
from bridge.devtools.localserver import serving
from bridge.devtools.simulator import KeyLimits, Simulator, SimulatorSettings, create_simulator
from bridge.events.routing import Router
from bridge.events.subscriptions import SubscriptionBook
from bridge.ops.metrics import Metrics
from bridge.polling.discoverer import Discoverer
from bridge.polling.poller import Poller
from bridge.polling.pool import UpstreamPool
from bridge.store import Store, WatchRecord, open_store
from tests.clock import FakeClock

KEYS = {"main": "aigen_test_disc_main", "quiet": "aigen_test_disc_quiet", "subbed": "aigen_test_disc_sub"}  # fmt: skip
HOUR = timedelta(hours=1)


class CountingTransport(httpx.AsyncBaseTransport):
    """Passes every request on, first noting when (by the fake clock) and with which key."""

    def __init__(self, clock: FakeClock) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._clock = clock
        self.sent: dict[str, list[tuple[datetime, str]]] = defaultdict(list)  # key: (at, path)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.sent[key].append((self._clock(), request.url.path))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def most_in_an_hour(self, key: str) -> int:
        """The most requests with `key` in any rolling hour (each window ending at a request)."""
        times = sorted(at for at, _ in self.sent[key])
        start, most = 0, 0
        for end, at in enumerate(times):
            while times[start] <= at - HOUR:
                start += 1
            most = max(most, end - start + 1)
        return most

    def lists(self, key: str) -> list[datetime]:
        return [at for at, path in self.sent[key] if path.endswith("/product-photo-jobs")]


def config_for(sim_url: str, storage_url: str, *, polls_per_hour: int, interval_s: float) -> Config:
    accounts = "\n".join(
        f"    {name}: {{api_key: {key}, polls_per_hour: {polls_per_hour}, max_concurrency: 4"
        f"{', discover: true' if name == 'main' else ''}}}"
        for name, key in KEYS.items()
    )
    return parse_config(
        f"""
storage: {{url: "{storage_url}"}}
upstream:
  base_url: "{sim_url}"
  timeout_s: 5
  transport: httpx
  accounts:
{accounts}
polling: {{queued_interval_s: 60, processing_interval_s: 30, max_interval_s: 300,
          watch_ttl_h: 48, discover_interval_s: {interval_s}}}
""",
        env={},
    )


@dataclass
class Rig:
    clock: FakeClock
    sim: Simulator
    store: Store
    poller: Poller
    discoverer: Discoverer
    transport: CountingTransport
    book: SubscriptionBook
    sim_url: str

    async def discovered(self, account: str = "main") -> list[WatchRecord]:
        found, _ = await self.store.watches.page(
            client=DISCOVERY_CLIENT, status=None, limit=1000, cursor=None
        )
        return [w for w in found if w.account == account]

    async def discovered_jobs(self, account: str = "main") -> set[str]:
        return {w.job_id for w in await self.discovered(account)}

    async def run(self, seconds: float, *, step: float = 1.0, poll: bool = True) -> None:
        """Advance the clock in steps, discovering (and polling) what is due at each."""
        elapsed = 0.0
        while elapsed < seconds:
            if poll:
                await self.poller.poll_due(self.clock())
            await self.discoverer.discover_due(self.clock())
            self.clock.advance(step)
            elapsed += step

    async def finish_round(self, *, limit_s: float = 120) -> None:
        """Step until no round is in progress (within `limit_s` of fake time)."""
        deadline = self.clock() + timedelta(seconds=limit_s)
        await self.discoverer.discover_due(self.clock())
        while self.discoverer.rounds:
            assert self.clock() < deadline, "the discovery round did not finish"
            self.clock.advance(1)
            await self.discoverer.discover_due(self.clock())


@contextlib.asynccontextmanager
async def rig(
    storage_url: str,
    *,
    polls_per_hour: int = 3600,
    sim_polls_per_hour: int = 100_000,
    interval_s: float = 300,
    page_size: int = 2,
    seconds_per_item: float = 60.0,
) -> AsyncIterator[Rig]:
    clock = FakeClock()
    settings = SimulatorSettings(
        keys={key: KeyLimits(polls_per_hour=sim_polls_per_hour, max_active_jobs=500)
              for key in KEYS.values()},
        queue_delay_s=600.0,
        seconds_per_item=seconds_per_item,
        failure_rate=0.0,
        seed=3,
        now=clock,
    )  # fmt: skip
    app = create_simulator(settings)
    transport = CountingTransport(clock)
    async with serving(app) as server:
        config = config_for(
            server.url, storage_url, polls_per_hour=polls_per_hour, interval_s=interval_s
        )
        store = await open_store(config.storage.url)
        pool = UpstreamPool(config, lambda: transport)
        book = SubscriptionBook(await store.subscriptions.current())
        metrics = Metrics()
        poller = Poller(
            store=store,
            upstream=pool,
            accounts=config.upstream.accounts,
            polling=config.polling,
            router=Router.from_config(config, book),
            timeout_s=config.upstream.timeout_s,
            metrics=metrics,
            now=clock,
            owner="discovery-test",
            rng=Random(1),
        )
        discoverer = Discoverer(
            store=store,
            upstream=pool,
            accounts=config.upstream.accounts,
            polling=config.polling,
            subscribed=lambda: book.current.accounts,
            metrics=metrics,
            now=clock,
            page_size=page_size,
        )
        await poller.start()
        try:
            yield Rig(
                clock, app.state.simulator, store, poller, discoverer, transport, book, server.url
            )
        finally:
            await pool.aclose()
            await store.close()
