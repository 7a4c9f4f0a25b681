"""create_app(config) -> Starlette: the HTTP API, storage and background work, wired together."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from bridge.api.errors import exception_handlers
from bridge.api.middleware import middleware
from bridge.api.routes import routes
from bridge.config import Config
from bridge.services import Clock, Resolver, Services, utcnow
from bridge.store import Store, open_store

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    store: Store | None = None,
    now: Clock = utcnow,
    resolve: Resolver | None = None,
) -> Starlette:
    """Build the bridge's ASGI app; storage opens (and migrates) when the app starts."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_store = store is None
        opened = store or await open_store(config.storage.url)
        services = Services(config=config, store=opened, now=now, resolve=resolve)
        app.state.services = services
        try:
            yield
        finally:
            if own_store:
                await opened.close()

    return Starlette(
        routes=routes(),
        middleware=middleware(),
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
