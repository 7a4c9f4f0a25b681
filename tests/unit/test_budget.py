import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.polling.budget import BURST, BudgetState, Limits, grant, next_grant_at, observe

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LIMITS = Limits(polls_per_hour=120, max_concurrency=2)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_budget_grants_a_short_burst_then_paces_evenly():
    state = BudgetState()
    taken = []
    for second in range(0, 3600, 1):
        k, state = grant(
            state, limits=Limits(120, 100), now=at(second), wanted=5, used_last_hour=0, in_flight=0
        )
        taken += [second] * k
    assert taken[:BURST] == [0] * BURST
    gaps = {b - a for a, b in zip(taken[BURST:], taken[BURST + 1 :], strict=False)}
    assert gaps == {30}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"used_last_hour": 120}, 0),  # the rolling hour is spent
        ({"used_last_hour": 119}, 1),
        ({"in_flight": 2}, 0),  # max_concurrency
        ({"in_flight": 1}, 1),
        ({"wanted": 1}, 1),
        ({"wanted": 0}, 0),
    ],
)
def test_budget_grant_respects_each_cap(kwargs, expected):
    args = {"wanted": 5, "used_last_hour": 0, "in_flight": 0, **kwargs}
    k, _ = grant(BudgetState(), limits=LIMITS, now=T0, **args)
    assert k == expected


def test_budget_pause_from_429_blocks_until_retry_after():
    state = observe(
        BudgetState(), now=T0, remaining=None, reset_at=None, retry_after_s=90, rate_limited=True
    )
    assert grant(state, limits=LIMITS, now=at(89), wanted=1, used_last_hour=0, in_flight=0)[0] == 0
    assert grant(state, limits=LIMITS, now=at(90), wanted=1, used_last_hour=0, in_flight=0)[0] == 1


def test_budget_429_without_retry_after_pauses_a_default_while():
    state = observe(BudgetState(), now=T0, remaining=None, reset_at=None, rate_limited=True)
    assert state.paused_until is not None and state.paused_until > at(1)


def test_budget_remaining_header_stretches_the_pace_until_reset():
    # 10 polls left for the next 600 s: one every 60 s, not one every 30 s.
    state = observe(BudgetState(), now=T0, remaining=10, reset_at=at(600))
    times = []
    for second in range(0, 600):
        k, state = grant(
            state, limits=Limits(120, 100), now=at(second), wanted=5, used_last_hour=0, in_flight=0
        )
        times += [second] * k
    assert 8 <= len(times) <= 10
    assert all(b - a >= 59 for a, b in itertools.pairwise(times))


def test_budget_zero_remaining_pauses_until_reset():
    state = observe(BudgetState(), now=T0, remaining=0, reset_at=at(300))
    assert grant(state, limits=LIMITS, now=at(299), wanted=1, used_last_hour=0, in_flight=0)[0] == 0
    assert grant(state, limits=LIMITS, now=at(300), wanted=1, used_last_hour=0, in_flight=0)[0] == 1


def test_budget_next_grant_at_waits_for_the_window_when_full():
    moment = next_grant_at(BudgetState(), limits=LIMITS, now=T0, oldest_in_window=at(-1000))
    assert moment == at(2600)


@settings(max_examples=150, deadline=None)
@given(
    polls_per_hour=st.integers(1, 500),
    steps=st.lists(st.tuples(st.floats(0.0, 120.0), st.integers(0, 10)), min_size=1, max_size=300),
)
def test_budget_never_exceeds_polls_per_hour_in_any_rolling_hour(polls_per_hour, steps):
    """Drive grant() the way the store does (log of past polls) at random times and demands."""
    limits = Limits(polls_per_hour, max_concurrency=1000)
    state, clock, log = BudgetState(), 0.0, []
    for advance, wanted in steps:
        clock += advance
        used = sum(1 for t in log if t > clock - 3600)
        k, state = grant(
            state, limits=limits, now=at(clock), wanted=wanted, used_last_hour=used, in_flight=0
        )
        log += [clock] * k
    for i, start in enumerate(log):
        in_window = [t for t in log[i:] if t < start + 3600]
        assert len(in_window) <= polls_per_hour


def test_budget_error_backoff_never_overflows():
    from random import Random

    from bridge.config import parse_config
    from bridge.events.routing import Router
    from bridge.polling.outcomes import ServerError
    from bridge.polling.planning import PlanContext, plan_poll
    from bridge.store.rows import JobRow

    config = parse_config("polling: {queued_interval_s: 60.0, processing_interval_s: 15.0}", env={})
    job = JobRow(None, "processing", False, T0, 15.0, 0, T0, T0, 0, None, 5000, 0, "main", "j")
    write = plan_poll(
        job,
        [],
        ServerError(rate_limit=None, request_id=None, status_code=500),
        PlanContext(
            polling=config.polling, router=Router.from_config(config), now=T0, rng=Random(0)
        ),
    )
    assert write.job is not None and write.job.error_count == 5001
