"""One event vocabulary: the API, the config checker and routing accept exactly the same patterns."""

import pytest
from pydantic import ValidationError

from bridge.api.schemas import CreateWatch
from bridge.config import ConfigError, parse_config
from bridge.events.routing import matches
from bridge.events.vocabulary import ALL_EVENT_TYPES, EVENT_PATTERNS, pattern_problem

JOB = "0b6f6a4e-3c1a-4c8e-9a59-2f0d8c1e5b7a"
ROUTE = """
channels:
  ops-mail: {{type: email, host: smtp.example.com, from: bridge@example.com, to: [ops@example.com]}}
routes:
  - {{events: ["{pattern}"], channels: [ops-mail]}}
"""


@pytest.mark.parametrize("pattern", EVENT_PATTERNS)
def test_vocabulary_every_pattern_is_accepted_everywhere_and_selects_an_event(pattern):
    assert pattern_problem(pattern) is None
    assert CreateWatch(job_id=JOB, events=[pattern]).events == [pattern]
    assert parse_config(ROUTE.format(pattern=pattern), env={}).routes[0].events == [pattern]
    assert any(matches(pattern, event_type) for event_type in ALL_EVENT_TYPES)


@pytest.mark.parametrize("pattern", ["job.bogus", "jobs.*", "item", "watch.failedd", "*.*", ""])
def test_vocabulary_unknown_patterns_are_refused_by_api_and_config_alike(pattern):
    assert pattern_problem(pattern) is not None
    with pytest.raises(ValidationError):
        CreateWatch(job_id=JOB, events=[pattern])
    with pytest.raises(ConfigError) as refused:
        parse_config(ROUTE.format(pattern=pattern), env={})
    assert refused.value.problems == [f"routes[0].events[0]: {pattern_problem(pattern)}"]


def test_vocabulary_openapi_enum_is_the_pattern_list():
    schema = CreateWatch.model_json_schema()
    items = schema["properties"]["events"]["anyOf"][0]["items"]
    assert items["enum"] == list(EVENT_PATTERNS)
