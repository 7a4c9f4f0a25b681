import json
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.api.parse import problems
from bridge.api.schemas import CreateWatch, ListWatchesQuery

JOB = "0b6f6a4e-3c1a-4c8e-9a59-2f0d8c1e5b7a"


def _problems_of(body: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        CreateWatch.model_validate_json(json.dumps(body))
    return problems(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "job_id: is required"),
        ({"job_id": "x"}, "job_id: must be a UUID"),
        ({"job_id": 1}, "job_id: must be a string"),
        ({"job_id": JOB, "extra": 1}, "extra: unknown field"),
        (
            {"job_id": JOB, "events": ["nope"]},
            "events[0]: unknown event pattern 'nope' (use '*', 'job.*', 'item.failed', ...)",
        ),
        ({"job_id": JOB, "metadata": {"k" * 41: "v"}}, "metadata key '" + "k" * 41 + "': "),
        ({"job_id": JOB, "metadata": {"a b": 1}}, "metadata['a b']: must be a string"),
        ({"job_id": JOB, "metadata": {"ok": 1}}, "metadata.ok: must be a string"),
        ({"job_id": JOB, "webhook_url": "nope"}, "webhook_url: must be an absolute https URL"),
        ([], "body: must be a JSON object"),
        ({"job_id": "x", "extra": 1}, "extra: unknown field; job_id: must be a UUID"),
    ],
)
def test_problems_name_each_field(body: Any, message: str) -> None:
    assert _problems_of(body).startswith(message)


def test_problems_of_broken_json() -> None:
    with pytest.raises(ValidationError) as caught:
        CreateWatch.model_validate_json(b'{"job_id": ')
    assert problems(caught.value) == "body: not valid JSON"


def test_problems_are_capped() -> None:
    body = {f"x{i}": i for i in range(30)}
    assert _problems_of(body).count(";") == 4


def test_create_watch_normalises_the_job_id() -> None:
    assert CreateWatch.model_validate({"job_id": JOB.upper()}).job_id == JOB


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, (None, 50, None)),
        ({"limit": "7", "status": "active"}, ("active", 7, None)),
        ({"cursor": "wat_" + "a" * 32, "other": "x"}, (None, 50, "wat_" + "a" * 32)),
    ],
)
def test_list_query_defaults_and_parses(
    query: dict[str, str], expected: tuple[str | None, int, str | None]
) -> None:
    parsed = ListWatchesQuery.model_validate(query)
    assert (parsed.status, parsed.limit, parsed.cursor) == expected
