"""The body of POST /product-photo-jobs, checked as the upstream checks it, and what it asks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from bridge.devtools.simulator.catalog import OPERATION_IDS, PRESET_IDS

IDEMPOTENCY_KEY = "Idempotency-Key"
KEY_LENGTH = (8, 160)


def _web_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        raise ValueError("must be an absolute http(s) URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an absolute http(s) URL")
    return value


def _known_operation(value: str) -> str:
    if value not in OPERATION_IDS:
        raise ValueError(f"must be one of {', '.join(OPERATION_IDS)}")
    return value


def _known_preset(value: str) -> str:
    if value not in PRESET_IDS:
        raise ValueError("is not a preset id returned by GET /product-photo-presets")
    return value


WebUrl = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(_web_url)]


class ImageIn(BaseModel):
    """One image to process: where to fetch it, and the caller's own id for it."""

    model_config = ConfigDict(extra="forbid")

    source_url: WebUrl
    external_id: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class CreateJobIn(BaseModel):
    """The upstream's ProductPhotoJobCreateRequest; unknown fields are refused, as Stripe does."""

    model_config = ConfigDict(extra="forbid")

    images: list[ImageIn] = Field(min_length=1, max_length=20)
    operation: Annotated[str, AfterValidator(_known_operation)] | None = None
    preset: Annotated[str, AfterValidator(_known_preset)] | None = None
    preservation_level: Literal["strict", "balanced", "creative"] = "strict"
    instructions: Annotated[str, Field(min_length=1, max_length=4000)] | None = None
    webhook_url: WebUrl | None = None


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A valid creation: its images' external ids, where to signal, and a fingerprint of the body."""

    external_ids: tuple[str | None, ...]
    webhook_url: str | None
    fingerprint: str  # the same request body, parsed, gives the same fingerprint


class BadRequest(Exception):
    """A creation the upstream answers 400, naming the field."""


def parse_creation(body: bytes, *, idempotency_key: str) -> JobRequest:
    """Check the Idempotency-Key and the body; return the JobRequest or raise BadRequest."""
    low, high = KEY_LENGTH
    if not idempotency_key:
        raise BadRequest(f"{IDEMPOTENCY_KEY}: the header is required.")
    if not low <= len(idempotency_key) <= high:
        raise BadRequest(f"{IDEMPOTENCY_KEY}: must be {low} to {high} characters.")
    try:
        parsed = CreateJobIn.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequest(first_problem(exc)) from None
    return JobRequest(
        external_ids=tuple(image.external_id for image in parsed.images),
        webhook_url=parsed.webhook_url,
        fingerprint=parsed.model_dump_json(),
    )


def first_problem(exc: ValidationError) -> str:
    """The first validation error as `images[0].source_url: Field required` (an unknown field is
    named only when nothing else is wrong: a misspelt field is better named by what is missing)."""
    error = sorted(exc.errors(), key=lambda e: e["type"] == "extra_forbidden")[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where or 'body'}: {message}"
