"""The imports API's request and response models (CONTRACT section 7), beside the watches' in
schemas.py; they validate input and generate /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bridge.api.schemas import (
    IMPORT_ID_PATTERN,
    AccountName,
    EventPatterns,
    JobId,
    Metadata,
    Watch,
    WebhookUrl,
)
from bridge.events.import_view import ImportRecord, import_view
from bridge.store.imports import FailureRecord

ImportStatus = Literal["open", "running", "completed", "partially_completed", "failed", "cancelled"]
FAILURE_CURSOR_PATTERN = r"^[0-9]{1,18}$"
_Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateImport(_Input):
    """The body of POST /v1/imports."""

    name: _Name = Field(description="What the import is, for people: 1 to 200 characters.")
    account: AccountName | None = Field(
        None, description="Upstream account; may be left out when the client has exactly one."
    )
    webhook_url: WebhookUrl | None = Field(
        None, description="An https URL that receives the import's events and its jobs', signed."
    )
    events: EventPatterns | None = Field(
        None, description='Event patterns to send to webhook_url; default ["*"].'
    )
    metadata: Metadata | None = Field(
        None, description="Up to 20 string pairs echoed in every event of the import and its jobs."
    )
    expected_jobs: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="The import closes itself when this many jobs are in it."
    )


class AddJobs(_Input):
    """The body of POST /v1/imports/{import_id}/jobs."""

    job_ids: Annotated[list[JobId], Field(min_length=1, max_length=100)] = Field(
        description="Upstream Product Photo job ids (UUIDs); one watch each."
    )
    metadata: Metadata | None = Field(
        None, description="String pairs for these jobs' events, over the import's own."
    )


class ListImportsQuery(_Input):
    """The query string of GET /v1/imports."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: ImportStatus | None = Field(None, description="Only imports with this status.")
    limit: int = Field(50, ge=1, le=100, description="Page size, 1 to 100.")
    cursor: Annotated[str, Field(pattern=IMPORT_ID_PATTERN)] | None = Field(
        None, description="The next_cursor of the previous page."
    )


class FailuresQuery(_Input):
    """The query string of GET /v1/imports/{import_id}/failures."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    limit: int = Field(100, ge=1, le=1000, description="Page size, 1 to 1000 (JSON only).")
    cursor: Annotated[str, Field(pattern=FAILURE_CURSOR_PATTERN)] | None = Field(
        None, description="The next_cursor of the previous page (JSON only)."
    )
    format: Literal["json", "csv"] | None = Field(
        None, description="csv: every failure as one CSV (as Accept: text/csv does)."
    )


class ImportJobs(BaseModel):
    """How many of the import's jobs are in each state."""

    total: int
    active: int
    completed: int
    partially_completed: int
    failed: int
    cancelled: int


class ImportImages(BaseModel):
    """The import's images, over all its jobs."""

    total: int
    completed: int
    failed: int
    pending: int


class Import(BaseModel):
    """A catalog import: many jobs told as one story."""

    id: str
    name: str
    account: str
    status: ImportStatus
    closed: bool
    expected_jobs: int | None
    jobs: ImportJobs
    images: ImportImages
    credits_used: int
    rate_images_per_hour: float | None
    eta: datetime | None
    stalled: bool
    webhook_url: str | None
    events: list[str]
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None


class ImportEnvelope(BaseModel):
    """One import."""

    model_config = ConfigDict(serialize_by_alias=True)

    import_: Import = Field(alias="import")


class ImportPage(BaseModel):
    """A page of imports, newest first."""

    imports: list[Import]
    next_cursor: str | None


class WatchList(BaseModel):
    """The watches of the jobs just added, in the order given."""

    watches: list[Watch]


class Failure(BaseModel):
    """One failed (or cancelled) image of an import, ready to resubmit."""

    job_id: str
    item_id: str
    external_id: str | None
    error_code: str | None
    error_message: str | None


class FailurePage(BaseModel):
    """A page of an import's failures, in the order they were found."""

    failures: list[Failure]
    next_cursor: str | None


def import_envelope(record: ImportRecord, *, now: datetime) -> ImportEnvelope:
    """{"import": Import} for a stored import."""
    return ImportEnvelope.model_validate({"import": import_model(record, now=now)})


def import_model(record: ImportRecord, *, now: datetime) -> Import:
    """The API's view of a stored import; rate and ETA as of `now`."""
    return Import.model_validate(import_view(record, now=now))


def failure_model(record: FailureRecord) -> Failure:
    """The API's view of one failure."""
    return Failure(
        job_id=record.job_id,
        item_id=record.item_id,
        external_id=record.external_id,
        error_code=record.error_code,
        error_message=record.error_message,
    )
