"""The operator API's request and response models (CONTRACT section 8), beside the clients' in
schemas.py; they validate input and generate /openapi.json."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from bridge.api.schemas import DELIVERY_ID_PATTERN, Delivery, DeliveryStatus, delivery_view
from bridge.store import DeliveryRecord

ChannelName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]


class OpsDeliveriesQuery(BaseModel):
    """The query string of GET /v1/ops/deliveries."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: DeliveryStatus | None = Field(None, description="Only deliveries with this status.")
    channel: ChannelName | None = Field(
        None, description="Only deliveries to this channel (`webhook_url`: watches' own webhooks)."
    )
    limit: int = Field(50, ge=1, le=100, description="Page size, 1 to 100.")
    cursor: Annotated[str, Field(pattern=DELIVERY_ID_PATTERN)] | None = Field(
        None, description="The next_cursor of the previous page."
    )


class RetryDeadDeliveries(BaseModel):
    """The body of POST /v1/ops/deliveries/retry: which dead deliveries to send again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: ChannelName | None = Field(
        None, description="Only deliveries to this configured channel (or `webhook_url`)."
    )
    since: AwareDatetime | None = Field(
        None, description="Only deliveries created at or after this time (with its offset)."
    )

    @field_validator("since")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range") from None


class OpsDelivery(Delivery):
    """A delivery as operators see it: also the watch (or import) it belongs to."""

    watch_id: str | None
    import_id: str | None


class OpsDeliveryPage(BaseModel):
    """A page of deliveries, newest first."""

    deliveries: list[OpsDelivery]
    next_cursor: str | None


class OpsDeliveryEnvelope(BaseModel):
    """One delivery."""

    delivery: OpsDelivery


class Retried(BaseModel):
    """How many dead deliveries went back to pending."""

    retried: int


class AccountBudget(BaseModel):
    """An upstream account's poll budget as the bridge counts it."""

    name: str
    polls_last_hour: int
    polls_per_hour: int
    upstream_remaining: int | None = Field(
        description="What X-RateLimit-Remaining last said, less the polls since; null when unknown."
    )
    paused_until: datetime | None = Field(description="No polls before this (a 429's Retry-After).")
    active_jobs: int = Field(description="Upstream jobs with at least one active watch.")


class AccountList(BaseModel):
    """Every configured upstream account."""

    accounts: list[AccountBudget]


class ChannelHealth(BaseModel):
    """A configured channel's backlog and how its latest deliveries went."""

    name: str
    type: str
    pending: int
    dead: int
    last_delivered_at: datetime | None
    last_error: str | None = Field(
        description="Of the latest failed delivery still pending or dead."
    )
    last_error_at: datetime | None


class ChannelList(BaseModel):
    """Every configured channel."""

    channels: list[ChannelHealth]


def ops_delivery_view(record: DeliveryRecord) -> OpsDelivery:
    """The operators' view of a delivery."""
    # An import's own events are numbered per import: their deliveries carry its id.
    of_import = record.watch_id.startswith("imp_")
    return OpsDelivery(
        **delivery_view(record).model_dump(),
        watch_id=None if of_import else record.watch_id,
        import_id=record.watch_id if of_import else None,
    )


SUBSCRIPTION_ID_PATTERN = r"^sub_[0-9a-f]{32}$"


class OpsSubscriptionsQuery(BaseModel):
    """The query string of GET /v1/ops/subscriptions."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    limit: int = Field(50, ge=1, le=100, description="Page size, 1 to 100.")
    cursor: Annotated[str, Field(pattern=SUBSCRIPTION_ID_PATTERN)] | None = Field(
        None, description="The next_cursor of the previous page."
    )


class SlackSubscription(BaseModel):
    """A Slack channel's subscription made through the Slack app (CONTRACT section 9)."""

    id: str
    team_id: str
    channel_id: str
    kind: Literal["account", "import", "job"]
    target: str = Field(description="The account's name, the import's id or the job's uuid.")
    account: str | None = Field(description="The account of an import or a job, when known.")
    events: list[str]
    created_by: str | None = Field(description="The Slack user who subscribed the channel.")
    created_at: datetime


class SlackSubscriptionPage(BaseModel):
    """A page of subscriptions, oldest first."""

    subscriptions: list[SlackSubscription]
    next_cursor: str | None
