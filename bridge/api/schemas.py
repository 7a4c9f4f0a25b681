"""The API's request and response models: they validate input and generate /openapi.json."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from bridge.events.vocabulary import EVENT_PATTERNS, pattern_problem
from bridge.store.records import DeliveryRecord, EventRecord, WatchRecord


def _known_pattern(value: str) -> str:
    problem = pattern_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# Derived from the one vocabulary; the enum keeps /openapi.json exact for generated clients.
EventPattern = Annotated[
    str,
    AfterValidator(_known_pattern),
    Field(json_schema_extra={"enum": list(EVENT_PATTERNS)}),
]
WatchStatus = Literal["active", "completed", "expired", "failed", "cancelled"]
DeliveryStatus = Literal["pending", "delivered", "dead"]

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
WATCH_ID_PATTERN = r"^wat_[0-9a-f]{32}$"
DELIVERY_ID_PATTERN = r"^dlv_[0-9a-f]{32}$"
IMPORT_ID_PATTERN = r"^imp_[0-9a-f]{32}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{1,255}$"
_UUID = re.compile(UUID_PATTERN)

_Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]  # PostgreSQL text holds no NUL
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[^\x00]*$")]
MetadataValue = Annotated[str, StringConstraints(max_length=500, pattern=r"^[^\x00]*$")]


def lower_uuid(value: str) -> str:
    """A UUID in lower case, or a ValueError."""
    if not _UUID.fullmatch(value):
        raise ValueError("must be a UUID")
    return value.lower()


def absolute_url(value: str) -> str:
    """An absolute URL as given (the webhook guard checks it further), or a ValueError."""
    try:
        parsed = httpx.URL(value)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        raise ValueError("not a valid URL") from None
    if not parsed.scheme or not parsed.host:
        raise ValueError("must be an absolute https URL")
    return value


JobId = Annotated[str, AfterValidator(lower_uuid), Field(json_schema_extra={"format": "uuid"})]
AccountName = Annotated[_Text, Field(min_length=1, max_length=200)]
WebhookUrl = Annotated[_Text, Field(min_length=1, max_length=2048), AfterValidator(absolute_url)]
EventPatterns = Annotated[list[EventPattern], Field(min_length=1, max_length=20)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=20)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateWatch(_Input):
    """The body of POST /v1/watches."""

    job_id: Annotated[str, Field(json_schema_extra={"format": "uuid"})] = Field(
        description="The upstream Product Photo job id (a UUID)."
    )
    account: Annotated[_Text, Field(min_length=1, max_length=200)] | None = Field(
        None, description="Upstream account; may be left out when the client has exactly one."
    )
    webhook_url: Annotated[_Text, Field(min_length=1, max_length=2048)] | None = Field(
        None, description="An https URL that receives this watch's events, signed."
    )
    events: Annotated[list[EventPattern], Field(min_length=1, max_length=20)] | None = Field(
        None, description='Event patterns to send to webhook_url; default ["*"].'
    )
    metadata: Annotated[dict[MetadataKey, MetadataValue], Field(max_length=20)] | None = Field(
        None, description="Up to 20 string pairs echoed in every event."
    )
    import_id: Annotated[str, Field(pattern=IMPORT_ID_PATTERN)] | None = Field(
        None,
        description="Add the job to this import: the watch takes the import's account, "
        "webhook_url and events (so webhook_url and events may not be given, and an account "
        "given must be the import's) and the import's metadata under its own; a job already in "
        "the import returns its watch again.",
    )

    @field_validator("job_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return lower_uuid(value)

    @field_validator("webhook_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        return None if value is None else absolute_url(value)


class ListWatchesQuery(_Input):
    """The query string of GET /v1/watches."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: WatchStatus | None = Field(None, description="Only watches with this status.")
    limit: int = Field(50, ge=1, le=100, description="Page size, 1 to 100.")
    cursor: Annotated[str, Field(pattern=WATCH_ID_PATTERN)] | None = Field(
        None, description="The next_cursor of the previous page."
    )


class JobSummary(BaseModel):
    """The upstream job's counters as last polled."""

    status: str | None
    total_items: int
    completed_items: int
    failed_items: int
    credits_used: int


class WatchError(BaseModel):
    """Why a watch failed or expired."""

    code: str
    message: str


class Watch(BaseModel):
    """A registered watch on one upstream job."""

    id: str
    job_id: str
    account: str
    status: WatchStatus
    webhook_url: str | None
    events: list[str]
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    job: JobSummary | None
    error: WatchError | None
    import_id: str | None = Field(description="The import the job belongs to, if any.")


class WatchEnvelope(BaseModel):
    """One watch."""

    watch: Watch


class WatchPage(BaseModel):
    """A page of watches, newest first."""

    watches: list[Watch]
    next_cursor: str | None


class Event(BaseModel):
    """An event as delivered: see the contract's section 4."""

    type: str
    timestamp: str
    data: dict[str, Any]


class EventList(BaseModel):
    """A watch's events in sequence order."""

    events: list[Event]


class Delivery(BaseModel):
    """One event on its way to one channel."""

    id: str
    event_id: str
    channel: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None


class DeliveryList(BaseModel):
    """A watch's deliveries, in event order."""

    deliveries: list[Delivery]


class DeliveryEnvelope(BaseModel):
    """One delivery."""

    delivery: Delivery


class ErrorBody(BaseModel):
    """What went wrong, and the request id to quote."""

    code: str
    message: str
    request_id: str


class ErrorEnvelope(BaseModel):
    """Every error response."""

    error: ErrorBody


class Health(BaseModel):
    """The process is alive."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether the bridge can serve: each check is "ok" or says what is wrong."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


def _count(job: dict[str, Any], key: str) -> int:
    value = job.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def watch_view(record: WatchRecord) -> Watch:
    """The API's view of a stored watch."""
    job = None
    if record.job is not None:
        status = record.job.get("status")
        job = JobSummary(
            status=status if isinstance(status, str) else None,
            total_items=_count(record.job, "total_items"),
            completed_items=_count(record.job, "completed_items"),
            failed_items=_count(record.job, "failed_items"),
            credits_used=_count(record.job, "credits_used"),
        )
    error = None
    if record.error_code:
        error = WatchError(code=record.error_code, message=record.error_message or "")
    return Watch(
        id=record.id,
        job_id=record.job_id,
        account=record.account,
        status=record.status,
        webhook_url=record.webhook_url,
        events=list(record.events),
        metadata=dict(record.metadata),
        created_at=record.created_at,
        updated_at=record.updated_at,
        last_polled_at=record.last_polled_at,
        next_poll_at=record.next_poll_at,
        job=job,
        error=error,
        import_id=record.import_id,
    )


def event_view(record: EventRecord) -> Event:
    """The stored event payload."""
    return Event.model_validate(record.payload)


def delivery_view(record: DeliveryRecord) -> Delivery:
    """The API's view of a delivery; `channel` is the destination name."""
    return Delivery(
        id=record.id,
        event_id=record.event_id,
        channel=record.destination,
        status=record.status,
        attempts=record.attempts,
        last_status_code=record.last_status_code,
        last_error=record.last_error,
        next_attempt_at=record.next_attempt_at,
    )
