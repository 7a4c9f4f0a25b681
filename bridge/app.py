"""create_app(config) -> Starlette: the HTTP API, storage and background work, wired together."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from bridge.api.errors import exception_handlers
from bridge.api.middleware import middleware
from bridge.api.routes import routes
from bridge.clock import Clock, utcnow
from bridge.config import Config
from bridge.polling.pool import TransportFactory
from bridge.runtime import Runtime
from bridge.services import Resolver
from bridge.store import Store

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
        runtime = await Runtime.start(
            config,
            store=store,
            now=now,
            resolve=resolve,
            background=background,
            upstream_transport=upstream_transport,
        )
        app.state.services, app.state.runtime = runtime.services, runtime
        try:
            yield
        finally:
            await runtime.stop()

    return Starlette(
        routes=routes(),
        middleware=middleware(),
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
