"""parse_body / parse_query: pydantic at the edge, every problem a 400 that names its field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request

from bridge.api.errors import ApiError, invalid

M = TypeVar("M", bound=BaseModel)

_MAX_PROBLEMS = 5
_MAX_LOC_PART = 60
_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "literal_error": "is not one of the allowed values",
}


def _place(loc: Sequence[int | str]) -> str:
    """('events', 0) -> "events[0]"; ('metadata', 'k', '[key]') -> "metadata key 'k'"; () -> "body"."""
    if len(loc) >= 2 and loc[-1] == "[key]":
        return f"{_place(loc[:-2])} key {str(loc[-2])[:_MAX_LOC_PART]!r}"
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i == 0:
            out += part[:_MAX_LOC_PART]
        else:
            out += f".{part}" if part.isidentifier() else f"[{part[:_MAX_LOC_PART]!r}]"
    return out or "body"


def _problem(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "json_invalid":
        return "body: not valid JSON"
    message = _MESSAGES.get(kind) or error["msg"].removeprefix("Value error, ")
    return f"{_place(error['loc'])}: {message[:1].lower()}{message[1:]}"


def problems(exc: ValidationError) -> str:
    """A one-line summary of a validation error, each problem led by the field it concerns."""
    found = [_problem(e) for e in exc.errors(include_url=False, include_input=False)]
    # Sorted: pydantic's own order of field and extra-key errors differs between its releases.
    unique = sorted(set(found))
    return "; ".join(unique[:_MAX_PROBLEMS])


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def parse_body(request: Request, model: type[M]) -> M:
    """The JSON body validated as `model`, or a 400 naming the field."""
    if not _is_json(request.headers.get("content-type", "")):
        raise invalid("Content-Type", "must be application/json")
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", problems(exc)) from None


def parse_query(request: Request, model: type[M]) -> M:
    """The query string validated as `model` (the last value of a repeated key wins)."""
    raw: dict[str, Any] = dict(request.query_params)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", problems(exc)) from None
