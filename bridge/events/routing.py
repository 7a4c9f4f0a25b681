"""Router(routes, channels).destinations(event_type, watch): where one event goes. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bridge.config import (
    ChannelConfig,
    Config,
    EmailChannelConfig,
    RouteConfig,
    SlackChannelConfig,
)
from bridge.events.subscriptions import SubscriptionBook, SubscriptionSet, slack_app_destination
from bridge.events.vocabulary import IMPORT_SUMMARY_EVENTS, SUMMARY_EVENTS

WEBHOOK_URL = "webhook_url"  # the destination name of a watch's own webhook_url


@dataclass(frozen=True, slots=True)
class WatchRoute:
    """The parts of a watch that decide where its events go."""

    client: str
    account: str
    webhook_url: str | None
    events: tuple[str, ...]
    import_id: str | None = None  # the import the watch's job belongs to (or the import itself)
    job_id: str | None = None  # the upstream job (None for an import's own events)


def matches(pattern: str, event_type: str) -> bool:
    """True when `pattern` ('*', 'job.*' or an exact type) covers `event_type`."""
    if pattern == "*" or pattern == event_type:
        return True
    return pattern.endswith(".*") and event_type.startswith(pattern[:-1])


def matches_any(patterns: Iterable[str], event_type: str) -> bool:
    """True when any pattern covers `event_type`."""
    return any(matches(p, event_type) for p in patterns)


@dataclass(frozen=True, slots=True)
class Router:
    """The operator's routes and the channels they name: all that routing needs of the config."""

    routes: Sequence[RouteConfig]
    channels: Mapping[str, ChannelConfig]
    book: SubscriptionBook = field(default_factory=SubscriptionBook)  # Slack channels' own

    @classmethod
    def from_config(cls, config: Config, book: SubscriptionBook | None = None) -> Router:
        """The router of a loaded config (and the Slack app's subscriptions, when given)."""
        return cls(
            routes=tuple(config.routes),
            channels=dict(config.channels),
            book=book or SubscriptionBook(),
        )

    def subscription_destination(self, channel_id: str) -> str:
        """Where a subscribed Slack channel's deliveries go: the configured Slack channel that posts
        to the same channel id (so the channel gets one message, not two), else the app's own."""
        for name, channel in self.channels.items():
            if isinstance(channel, SlackChannelConfig) and channel.channel == channel_id:
                return name
        return slack_app_destination(channel_id)

    def destinations(self, event_type: str, watch: WatchRoute) -> list[str]:
        """Where one event of `watch` goes; see `destinations`."""
        return destinations(event_type, watch, self)

    def grouped_destinations(self, event_type: str, watch: WatchRoute) -> list[tuple[str, bool]]:
        """Where one event of `watch` goes, each with whether it is told inside its import."""
        return grouped_destinations(event_type, watch, self)


def _told_in_import(route: RouteConfig, channel: ChannelConfig, watch: WatchRoute) -> bool:
    """Slack and email tell a job of an import inside the import's story, unless the route says job."""
    return (
        watch.import_id is not None
        and route.group_by == "import"
        and isinstance(channel, SlackChannelConfig | EmailChannelConfig)
    )


def _summary_takes(event_type: str, grouped: bool) -> bool:
    """A summary-mode email takes what ends an import, and what ends a job told on its own."""
    return event_type in IMPORT_SUMMARY_EVENTS or (not grouped and event_type in SUMMARY_EVENTS)


def destinations(event_type: str, watch: WatchRoute, router: Router) -> list[str]:
    """The names of `grouped_destinations`."""
    return [name for name, _ in grouped_destinations(event_type, watch, router)]


def grouped_destinations(
    event_type: str, watch: WatchRoute, router: Router
) -> list[tuple[str, bool]]:
    """The watch's own webhook (if its `events` cover the type), then every matching route's
    channels, each with whether the channel tells the event inside the watch's import.

    A channel named by several routes is listed once, as the first of them says; an email channel
    in summary mode only takes the events that end a job, a watch or an import, so it sends one
    email per job (or per import, for the jobs told inside one).
    """
    out: list[tuple[str, bool]] = []
    named: set[str] = set()
    book = router.book.current
    if watch.webhook_url and matches_any(watch.events, event_type):
        out.append((WEBHOOK_URL, False))
        named.add(WEBHOOK_URL)
    for route in router.routes:
        if route.accounts is not None and watch.account not in route.accounts:
            continue
        if route.clients is not None and watch.client not in route.clients:
            continue
        if not matches_any(route.events, event_type):
            continue
        for name in route.channels:
            channel = router.channels.get(name)
            if name in named or channel is None or _muted(book, channel, watch):
                continue
            grouped = _told_in_import(route, channel, watch)
            if (
                isinstance(channel, EmailChannelConfig)
                and channel.mode == "summary"
                and not _summary_takes(event_type, grouped)
            ):
                continue
            named.add(name)
            out.append((name, grouped))
    out += _subscribed(event_type, watch, router, book, named)
    return out


def _muted(book: SubscriptionSet, channel: ChannelConfig, watch: WatchRoute) -> bool:
    """Whether the Slack channel a configured channel posts to muted this job or import."""
    return isinstance(channel, SlackChannelConfig) and book.muted(
        channel.channel, account=watch.account, job_id=watch.job_id, import_id=watch.import_id
    )


def _subscribed(
    event_type: str, watch: WatchRoute, router: Router, book: SubscriptionSet, named: set[str]
) -> list[tuple[str, bool]]:
    """The subscribed Slack channels that take the event, as routes to them would: a job of an
    import is told inside the import's message unless the channel subscribed to the job itself."""
    out: list[tuple[str, bool]] = []
    covering = book.covering(account=watch.account, job_id=watch.job_id, import_id=watch.import_id)
    for sub in covering:
        name = router.subscription_destination(sub.channel_id)
        if name in named or not matches_any(sub.events, event_type):
            continue
        if book.muted(
            sub.channel_id, account=watch.account, job_id=watch.job_id, import_id=watch.import_id
        ):
            continue
        named.add(name)
        out.append((name, watch.import_id is not None and sub.kind != "job"))
    return out
