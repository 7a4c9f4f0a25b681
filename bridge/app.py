"""create_app(config) -> Starlette: the HTTP API, storage and background work, wired together."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from starlette.applications import Starlette

from bridge.api.context import ApiContext
from bridge.api.errors import exception_handlers
from bridge.api.middleware import middleware
from bridge.api.ratelimit import RateLimiter
from bridge.api.routes import routes
from bridge.clock import Clock, utcnow
from bridge.config import Config
from bridge.console.context import ConsoleContext
from bridge.console.routes import console_mount
from bridge.console.throttle import SignInThrottle
from bridge.console.thumbnails import thumbnail_fetcher
from bridge.delivery.urlguard import Resolver, check_url
from bridge.events.import_events import ImportEventPlanner
from bridge.polling.pool import TransportFactory
from bridge.rendering.pages import PageRenderer
from bridge.runtime import Runtime
from bridge.slackapp.context import SlackAppContext
from bridge.slackapp.routes import slack_routes
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
    renderer = PageRenderer()  # every page compiles now: a broken template fails at start
    throttle = SignInThrottle(monotonic=time.monotonic)
    allowed_hosts = tuple(config.delivery.allowed_hosts)

    async def check_thumbnail(url: str) -> Sequence[object]:
        return await check_url(url, allowed_hosts=allowed_hosts, resolve=resolve)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
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
            allowed_hosts=allowed_hosts,
            store=runtime.store,
            metrics=runtime.metrics,
            now=now,
            resolve=resolve,
            scheduler_running=lambda: runtime.background.running,
            limiter=limiter,
            imports=ImportEventPlanner(runtime.router),
            watch_signalled=lambda account, job_id: runtime.discoverer.watch_signalled(
                account, job_id, now=now()
            ),
        )
        console = ConsoleContext(
            operators=config.operators,
            accounts=config.upstream.accounts,
            channels=config.channels,
            store=runtime.store,
            now=now,
            renderer=renderer,
            throttle=throttle,
            fetch_thumbnail=thumbnail_fetcher(check=check_thumbnail),
        )
        state: dict[str, object] = {"api": api, "console": console}
        if config.slack_app is not None:
            state["slack_app"] = SlackAppContext(
                store=runtime.store,
                accounts=config.upstream.accounts,
                now=now,
                refresh=runtime.refresh_subscriptions,
                allowed_teams=frozenset(config.slack_app.allowed_teams),
            )
        try:
            yield state
        finally:
            await runtime.stop()

    app = Starlette(
        routes=[
            *routes(),
            *console_mount(config.operators),
            *(slack_routes(config.slack_app) if config.slack_app is not None else []),
        ],
        middleware=middleware(),
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    # No 307 from "/path/" to "/path": Starlette builds that Location from the caller's Host header.
    app.router.redirect_slashes = False
    return app
