"""Runtime: the parts of a running bridge (storage, upstream pool, poller, deliverer, scheduler),
each built with what it needs, started and drained together; `create_app` holds one for its lifetime."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from bridge.background import Background, Step, replica_id
from bridge.clock import Clock
from bridge.config import Config
from bridge.delivery.channels.registry import ChannelRegistry
from bridge.delivery.deliverer import Deliverer
from bridge.delivery.http import open_http
from bridge.delivery.urlguard import Resolver
from bridge.events.import_events import ImportEventPlanner
from bridge.events.routing import Router
from bridge.events.subscriptions import SubscriptionBook
from bridge.ops.metrics import Metrics
from bridge.polling.discoverer import Discoverer
from bridge.polling.poller import Poller
from bridge.polling.pool import TransportFactory, UpstreamPool
from bridge.rendering import Renderer
from bridge.store import Store, open_store

POLL_TICK_S = 1.0
DELIVER_TICK_S = 1.0  # deliveries also start at once when events are committed or a slot frees
PRUNE_TICK_S = 300.0
STALL_TICK_S = 60.0  # at most this late, or a quarter of imports.stall_after_s when shorter
DISCOVER_TICK_S = 1.0  # the step decides which accounts' rounds are due (discover_interval_s)
SUBSCRIPTIONS_TICK_S = 5.0  # another replica's new subscription routes here within this long
RETENTION_BATCH = 50  # watches per transaction: ~0.1 s of SQLite's one writer in a 600 MB file


def retention_step(store: Store, *, days: float, now: Clock) -> Step:
    """The background step that deletes one batch of what ended more than `days` ago; it returns
    the batch's size, so the scheduler runs it again at once while there is more."""

    async def prune(_: datetime | None) -> int:
        moment = now()
        return await store.retention.prune(
            ended_before=moment - timedelta(days=days), now=moment, limit=RETENTION_BATCH
        )

    return prune


def stall_step(
    store: Store,
    *,
    planner: ImportEventPlanner,
    stall_after_s: float,
    now: Clock,
    on_events: Callable[[], None] | None = None,
) -> Step:
    """The background step that marks imports stalled (`import.stalled`) when no image of theirs
    finished for `stall_after_s`; it returns how many, so a full batch runs again at once."""

    async def sweep(_: datetime | None) -> int:
        found = await store.imports.stall_due(
            now=now(), stall_after=timedelta(seconds=stall_after_s), planner=planner
        )
        if found and on_events is not None:
            on_events()  # their events go out now, not at the next delivery tick
        return found

    return sweep


@dataclass
class Runtime:
    """Everything `serve` runs besides the HTTP API."""

    store: Store
    metrics: Metrics
    poller: Poller
    deliverer: Deliverer
    background: Background
    upstream: UpstreamPool
    http: httpx.AsyncClient
    owns_store: bool
    router: Router  # routes and the Slack app's subscriptions: one for every writer of events
    book: SubscriptionBook
    discoverer: Discoverer  # lists discovering accounts' jobs; watches signalled unknown jobs

    async def refresh_subscriptions(self) -> None:
        """Read the subscriptions and mutes again, so routing follows a change at once."""
        self.book.replace(await self.store.subscriptions.current())

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
        metrics = Metrics()
        owner = replica_id()
        work = Background()
        upstream = UpstreamPool(config, upstream_transport)
        book = SubscriptionBook(await opened.subscriptions.current())
        router = Router.from_config(config, book)
        poller = Poller(
            store=opened,
            upstream=upstream,
            accounts=config.upstream.accounts,
            polling=config.polling,
            router=router,
            timeout_s=config.upstream.timeout_s,
            metrics=metrics,
            now=now,
            owner=owner,
            on_events=lambda: work.nudge("deliver"),
        )
        discoverer = Discoverer(
            store=opened,
            upstream=upstream,
            accounts=config.upstream.accounts,
            polling=config.polling,
            subscribed=lambda: book.current.accounts,
            metrics=metrics,
            now=now,
            on_watched=lambda: work.nudge("poll"),
        )
        http = open_http()  # webhooks' pool (aiohttp's), redirects not followed
        registry = ChannelRegistry(
            config=config,
            http=http,
            state=opened.channel_state,
            renderer=renderer,
            resolve=resolve,
            now=now,
            failures=opened.imports,
        )
        deliverer = Deliverer(
            store=opened,
            channels=registry,
            settings=config.delivery,
            metrics=metrics,
            now=now,
            owner=owner,
            on_free=lambda: work.nudge("deliver"),  # a freed slot may take a waiting delivery
        )

        async def prune(_: datetime | None) -> int:
            await opened.jobs.prune_poll_log(now=now())
            return 0

        async def refresh(_: datetime | None) -> int:
            book.replace(await opened.subscriptions.current())
            return 0

        await poller.start()
        if background:
            work.start(
                {
                    "poll": (poller.poll_due, POLL_TICK_S),
                    "deliver": (deliverer.dispatch_due, DELIVER_TICK_S),
                    "prune-poll-log": (prune, PRUNE_TICK_S),
                    "subscriptions": (refresh, SUBSCRIPTIONS_TICK_S),
                    "discover": (discoverer.discover_due, DISCOVER_TICK_S),
                    "retention": (
                        retention_step(opened, days=config.retention.days, now=now),
                        PRUNE_TICK_S,
                    ),
                    "import-stalls": (
                        stall_step(
                            opened,
                            planner=poller.imports,
                            stall_after_s=config.imports.stall_after_s,
                            now=now,
                            on_events=lambda: work.nudge("deliver"),
                        ),
                        min(STALL_TICK_S, config.imports.stall_after_s / 4),
                    ),
                }
            )
        return cls(
            opened,
            metrics,
            poller,
            deliverer,
            work,
            upstream,
            http,
            owns_store=store is None,
            router=router,
            book=book,
            discoverer=discoverer,
        )

    async def stop(self) -> None:
        """Drain: finish the polls and sends in flight, then close every connection."""
        await self.background.stop()
        await self.deliverer.aclose()
        await self.upstream.aclose()
        await self.http.aclose()
        if self.owns_store:
            await self.store.close()
