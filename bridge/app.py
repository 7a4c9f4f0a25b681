"""create_app(config) -> Starlette: the HTTP API, storage and background work, wired together."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime

from starlette.applications import Starlette

from bridge.api.errors import exception_handlers
from bridge.api.middleware import middleware
from bridge.api.routes import routes
from bridge.background import Background, replica_id
from bridge.clients import TransportFactory, UpstreamClients
from bridge.config import Config
from bridge.poller import Poller
from bridge.services import Clock, Resolver, Services, utcnow
from bridge.store import Store, open_store

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    store: Store | None = None,
    now: Clock = utcnow,
    resolve: Resolver | None = None,
    background: bool = True,
    upstream_transport: TransportFactory | None = None,
) -> Starlette:
    """Build the bridge's ASGI app; storage opens (and migrates) and polling starts with the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened = store or await open_store(config.storage.url)
        services = Services(config=config, store=opened, now=now, resolve=resolve)
        clients = UpstreamClients(config, upstream_transport)
        poller = Poller(services=services, clients=clients, owner=replica_id())
        await poller.start()

        async def prune(_: datetime | None) -> int:
            await opened.prune_poll_log(now=services.now())
            return 0

        work = Background({"poll": (poller.poll_due, 1.0), "prune-poll-log": (prune, 300.0)})
        services.scheduler_running = lambda: work.running
        app.state.services, app.state.poller = services, poller
        if background:
            work.start()
        try:
            yield
        finally:
            await work.stop()
            await clients.aclose()
            if store is None:
                await opened.close()

    return Starlette(
        routes=routes(),
        middleware=middleware(),
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
