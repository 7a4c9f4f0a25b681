"""Router(routes, channels).destinations(event_type, watch): where one event goes. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bridge.config import ChannelConfig, Config, EmailChannelConfig, RouteConfig
from bridge.events.vocabulary import SUMMARY_EVENTS

WEBHOOK_URL = "webhook_url"  # the destination name of a watch's own webhook_url


@dataclass(frozen=True, slots=True)
class WatchRoute:
    """The parts of a watch that decide where its events go."""

    client: str
    account: str
    webhook_url: str | None
    events: tuple[str, ...]


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

    @classmethod
    def from_config(cls, config: Config) -> Router:
        """The router of a loaded config."""
        return cls(routes=tuple(config.routes), channels=dict(config.channels))

    def destinations(self, event_type: str, watch: WatchRoute) -> list[str]:
        """Where one event of `watch` goes; see `destinations`."""
        return destinations(event_type, watch, self)


def destinations(event_type: str, watch: WatchRoute, router: Router) -> list[str]:
    """The watch's own webhook (if its `events` cover the type), then every matching route's channels.

    A channel named by several routes is listed once; an email channel in summary mode only takes the
    events that end a job or a watch, so it sends one email per job.
    """
    out: list[str] = []
    if watch.webhook_url and matches_any(watch.events, event_type):
        out.append(WEBHOOK_URL)
    for route in router.routes:
        if route.accounts is not None and watch.account not in route.accounts:
            continue
        if route.clients is not None and watch.client not in route.clients:
            continue
        if not matches_any(route.events, event_type):
            continue
        for name in route.channels:
            channel = router.channels.get(name)
            if name in out or channel is None:
                continue
            if (
                isinstance(channel, EmailChannelConfig)
                and channel.mode == "summary"
                and event_type not in SUMMARY_EVENTS
            ):
                continue
            out.append(name)
    return out
