"""SlackAppContext: what the Slack app's commands and buttons need, built once per app and reached
through the request's lifespan state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request

from bridge.clock import Clock
from bridge.config import AccountConfig
from bridge.store import Store


@dataclass(frozen=True, slots=True)
class SlackAppContext:
    """The Slack app's collaborators and settings."""

    store: Store
    accounts: Mapping[str, AccountConfig]
    now: Clock
    refresh: Callable[[], Awaitable[None]]  # re-reads subscriptions so routing follows at once
    allowed_teams: frozenset[str]  # empty: every team whose requests carry a valid signature

    def allows(self, team_id: str | None) -> bool:
        """Whether a request from this Slack team may use the app."""
        return not self.allowed_teams or (team_id is not None and team_id in self.allowed_teams)


def slack_app_of(request: Request) -> SlackAppContext:
    """The running bridge's SlackAppContext, which the lifespan put in the request's state."""
    found = request.scope.get("state", {}).get("slack_app")
    if not isinstance(found, SlackAppContext):
        raise RuntimeError("the bridge's lifespan has not started")
    return found
