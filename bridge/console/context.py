"""ConsoleContext: what the console's pages need, built once per app and reached through the
request's lifespan state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request

from bridge.clock import Clock
from bridge.config import AccountConfig, ChannelConfig, OperatorConfig
from bridge.console.throttle import SignInThrottle
from bridge.rendering.pages import PageRenderer
from bridge.store import Store

# Fetches an image URL for the job page: (bytes, content type), or None when it may not or cannot.
ThumbnailFetcher = Callable[[str], Awaitable[tuple[bytes, str] | None]]


@dataclass(frozen=True, slots=True)
class ConsoleContext:
    """The console's collaborators and settings."""

    operators: Mapping[str, OperatorConfig]
    accounts: Mapping[str, AccountConfig]
    channels: Mapping[str, ChannelConfig]
    store: Store
    now: Clock
    renderer: PageRenderer
    throttle: SignInThrottle
    fetch_thumbnail: ThumbnailFetcher
    refresh_s: int = 3  # how often an open page asks for fresh data


def console_of(request: Request) -> ConsoleContext:
    """The running bridge's ConsoleContext, which the lifespan put in the request's state."""
    found = request.scope.get("state", {}).get("console")
    if not isinstance(found, ConsoleContext):
        raise RuntimeError("the bridge's lifespan has not started")
    return found
