"""Runtime: the parts of a running bridge (storage, clients, poller, deliverer, clock), started and
drained together; `create_app` holds one for the app's lifetime."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx

from bridge.background import Background, replica_id
from bridge.clock import Clock
from bridge.config import Config
from bridge.delivery.channels.registry import ChannelRegistry
from bridge.delivery.deliverer import Deliverer
from bridge.polling.poller import Poller
from bridge.polling.pool import TransportFactory, UpstreamPool
from bridge.rendering import Renderer
from bridge.services import Resolver, Services
from bridge.store import Store, open_store

POLL_TICK_S = 1.0
DELIVER_TICK_S = 1.0  # deliveries also start at once when the poller commits events
PRUNE_TICK_S = 300.0


@dataclass
class Runtime:
    """Everything `serve` runs besides the HTTP API."""

    services: Services
    poller: Poller
    deliverer: Deliverer
    background: Background
    clients: UpstreamPool
    http: httpx.AsyncClient
    owns_store: bool

    @classmethod
    async def start(
        cls,
        config: Config,
        *,
        store: Store | None,
        now: Clock,
        resolve: Resolver | None,
        background: bool,
        upstream_transport: TransportFactory | None = None,
    ) -> Runtime:
        """Open storage (migrating it), compile templates, and start polling and delivery."""
        renderer = Renderer(override_dir=config.templates.dir)  # a broken template fails here
        opened = store or await open_store(config.storage.url)
        services = Services(config=config, store=opened, now=now, resolve=resolve)
        owner = replica_id()
        clients = UpstreamPool(config, upstream_transport)
        poller = Poller(services=services, clients=clients, owner=owner)
        http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=64),
            follow_redirects=False,
        )
        registry = ChannelRegistry(
            config=config,
            http=http,
            state=opened.channel_state,
            renderer=renderer,
            resolve=resolve,
            now=now,
        )
        deliverer = Deliverer(services=services, channels=registry, owner=owner)

        async def prune(_: datetime | None) -> int:
            await opened.jobs.prune_poll_log(now=services.now())
            return 0

        work = Background(
            {
                "poll": (poller.poll_due, POLL_TICK_S),
                "deliver": (deliverer.deliver_due, DELIVER_TICK_S),
                "prune-poll-log": (prune, PRUNE_TICK_S),
            }
        )
        poller.on_events = lambda: work.nudge("deliver")
        services.scheduler_running = lambda: work.running
        await poller.start()
        if background:
            work.start()
        return cls(services, poller, deliverer, work, clients, http, owns_store=store is None)

    async def stop(self) -> None:
        """Drain: finish the polls and sends in flight, then close every connection."""
        await self.background.stop()
        await self.deliverer.aclose()
        await self.clients.aclose()
        await self.http.aclose()
        if self.owns_store:
            await self.services.store.close()
