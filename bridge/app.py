"""create_app(config) -> Starlette: the HTTP API, storage and background work, wired together."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from starlette.applications import Starlette

from bridge.api.context import ApiContext
from bridge.api.errors import exception_handlers
from bridge.api.middleware import middleware
from bridge.api.ratelimit import RateLimiter
from bridge.api.routes import routes
from bridge.clock import Clock, utcnow
from bridge.config import Config
from bridge.delivery.urlguard import Resolver
from bridge.events.import_events import ImportEventPlanner
from bridge.events.routing import Router
from bridge.polling.pool import TransportFactory
from bridge.runtime import Runtime
from bridge.store import Store


def create_app(
    config: Config,
    *,
    store: Store | None = None,
    now: Clock = utcnow,
    resolve: Resolver | None = None,
    background: bool = True,
    upstream_transport: TransportFactory | None = None,
    rate_limiter: RateLimiter | None = None,
) -> Starlette:
    """Build the bridge's ASGI app; storage opens (and migrates) and polling starts with the app.

    Handlers reach the bridge through the lifespan state's `api` (an ApiContext).
    """
    limiter = rate_limiter or RateLimiter()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, ApiContext]]:
        runtime = await Runtime.start(
            config,
            store=store,
            now=now,
            resolve=resolve,
            background=background,
            upstream_transport=upstream_transport,
        )
        api = ApiContext(
            clients=config.clients,
            operators=config.operators,
            accounts=config.upstream.accounts,
            channels=config.channels,
            watch_ttl=timedelta(hours=config.polling.watch_ttl_h),
            import_job_ttl=timedelta(hours=config.imports.job_ttl_h),
            allowed_hosts=tuple(config.delivery.allowed_hosts),
            store=runtime.store,
            metrics=runtime.metrics,
            now=now,
            resolve=resolve,
            scheduler_running=lambda: runtime.background.running,
            limiter=limiter,
            imports=ImportEventPlanner(Router.from_config(config)),
        )
        try:
            yield {"api": api}
        finally:
            await runtime.stop()

    app = Starlette(
        routes=routes(),
        middleware=middleware(),
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    # No 307 from "/path/" to "/path": Starlette builds that Location from the caller's Host header.
    app.router.redirect_slashes = False
    return app
