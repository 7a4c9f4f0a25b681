"""Slack channels' own subscriptions and mutes, as routing reads them. Pure: no I/O.

A subscription makes a Slack channel hear about an account's jobs, one import or one job as if a
route named the channel; a mute stops a channel hearing about one job or import, whether a route
or a subscription brought it there. `SubscriptionBook` holds the set the store last read, so the
router always sees one consistent set while a refresh swaps in the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

SubscriptionKind = Literal["account", "import", "job"]
MuteKind = Literal["job", "import"]
SLACK_APP_PREFIX = "slack-app:"  # the destination of a channel no configured channel posts to


def job_target(account: str, job_id: str) -> str:
    """How a mute (and a job subscription with a known account) names one upstream job."""
    return f"{account}/{job_id}"


def slack_app_destination(channel_id: str) -> str:
    """The delivery destination of a Slack channel reached through the Slack app's token."""
    return SLACK_APP_PREFIX + channel_id


@dataclass(frozen=True, slots=True)
class Subscription:
    """One channel's subscription to an account, an import or a job."""

    id: str
    team_id: str
    channel_id: str
    kind: SubscriptionKind
    target: str  # the account's name, the import's id or the job's uuid
    account: str | None  # the account of an import or a job, when known
    events: tuple[str, ...]
    created_by: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Mute:
    """A channel that no longer hears about one job (`account/job uuid`) or import (its id)."""

    channel_id: str
    kind: MuteKind
    target: str


@dataclass(frozen=True, slots=True)
class SubscriptionSet:
    """Every subscription and mute, as last read from the store."""

    subscriptions: tuple[Subscription, ...] = ()
    mutes: frozenset[Mute] = field(default_factory=frozenset)

    def muted(
        self, channel_id: str, *, account: str, job_id: str | None, import_id: str | None
    ) -> bool:
        """Whether the channel muted this job or its import."""
        if not self.mutes:
            return False
        if (
            job_id is not None
            and Mute(channel_id, "job", job_target(account, job_id)) in self.mutes
        ):
            return True
        return import_id is not None and Mute(channel_id, "import", import_id) in self.mutes

    def covering(
        self, *, account: str, job_id: str | None, import_id: str | None
    ) -> list[Subscription]:
        """The subscriptions that take events of this job (or, with no job, this import)."""
        out: list[Subscription] = []
        for sub in self.subscriptions:
            if sub.kind == "account":
                hit = sub.target == account
            elif sub.kind == "import":
                hit = import_id is not None and sub.target == import_id
            else:
                hit = job_id is not None and sub.target == job_id
                hit = hit and (sub.account is None or sub.account == account)
            if hit:
                out.append(sub)
        return out

    @property
    def accounts(self) -> frozenset[str]:
        """The accounts some channel subscribed to (discovery lists their jobs)."""
        return frozenset(s.target for s in self.subscriptions if s.kind == "account")


class SubscriptionBook:
    """The current SubscriptionSet; a refresh replaces it whole."""

    def __init__(self, current: SubscriptionSet | None = None) -> None:
        self.current = current or SubscriptionSet()

    def replace(self, fresh: SubscriptionSet) -> None:
        """Swap in a newly read set."""
        self.current = fresh
