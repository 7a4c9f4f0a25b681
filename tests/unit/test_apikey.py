"""A 401 fails an account's watches only when it repeats a minute after the first, with no accepted
poll between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.polling.apikey import key_refused, key_verdict, observe_key
from bridge.polling.outcomes import (
    ConnectionFailed,
    Malformed,
    NotFound,
    Outcome,
    ServerError,
    TimedOut,
    Unauthorized,
)
from bridge.store.rows import BudgetRow

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("outcomes", "verdict"),
    [
        ([Unauthorized()], False),
        ([Unauthorized(), ServerError(), TimedOut()], False),
        ([Unauthorized(), NotFound()], True),  # the key worked for another poll of the batch
        ([Malformed(error="not a job"), Unauthorized()], True),
        ([ServerError(), ConnectionFailed(error="reset")], None),
        ([], None),
    ],
)
def test_apikey_verdict_of_a_batch(outcomes: list[Outcome], verdict: bool | None) -> None:
    assert key_verdict(outcomes) is verdict


def _after(*steps: tuple[float, bool]) -> BudgetRow:
    state = BudgetRow()
    for seconds, accepted in steps:
        state = observe_key(state, accepted=accepted, now=T0 + timedelta(seconds=seconds))
    return state


@pytest.mark.parametrize(
    ("steps", "at", "refused"),
    [
        ([(0, False)], 0, False),  # one 401
        ([(0, False), (30, False)], 30, False),  # again, but within the minute
        ([(0, False), (60, False)], 60, True),  # again a minute later
        ([(0, False), (59.9, False)], 59.9, False),
        ([(0, False), (30, True), (60, False)], 60, False),  # a success between starts over
        ([(0, False), (30, True), (60, False), (120, False)], 120, True),
        ([(0, True)], 0, False),
    ],
)
def test_apikey_refused_only_when_it_repeats_a_minute_later(
    steps: list[tuple[float, bool]], at: float, refused: bool
) -> None:
    state = _after(*steps)
    assert key_refused(state, now=T0 + timedelta(seconds=at)) is refused
