"""Per-account poll budget: how many polls may start now, paced evenly. Pure: no I/O, no clock.

Three limits hold at once, and the tightest wins:
- pacing, a generic cell rate algorithm: one poll every 3600/polls_per_hour seconds, with a burst of a
  few polls after a quiet spell so a new watch is answered quickly;
- a hard cap: never more than polls_per_hour polls in any rolling hour, counted from the shared poll log
  (so replicas and bursts together still cannot overspend);
- the upstream's own word: X-RateLimit-Remaining/Reset stretch the pacing so the remaining polls last until
  the reset, and a 429 pauses the account until Retry-After.
Which due jobs get the polls granted is `fairness.fair_order`: clients take turns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bridge.polling.fairness import fair_order
from bridge.store.rows import AccountDemand, BudgetGrant, BudgetRow

BURST = 3  # polls that may start back to back after a quiet spell ("no bursts of more than a few")
DEFAULT_PAUSE_S = 60.0  # a 429 without Retry-After pauses the account this long
HOUR = timedelta(hours=1)


BudgetState = BudgetRow  # the policy reads and returns the stored row


@dataclass(frozen=True, slots=True)
class Limits:
    """An account's configured limits."""

    polls_per_hour: int
    max_concurrency: int


def interval(state: BudgetState, limits: Limits, now: datetime) -> float:
    """Seconds between polls: the configured pace, stretched so upstream's remaining polls last."""
    base = 3600.0 / limits.polls_per_hour
    if state.remaining is not None and state.reset_at is not None and state.reset_at > now:
        return max(base, (state.reset_at - now).total_seconds() / max(state.remaining, 1))
    return base


def _fresh(state: BudgetState, now: datetime) -> BudgetState:
    if state.reset_at is not None and state.reset_at <= now:
        state = replace(state, remaining=None, reset_at=None)
    if state.paused_until is not None and state.paused_until <= now:
        state = replace(state, paused_until=None)
    return state


def grant(
    state: BudgetState,
    *,
    limits: Limits,
    now: datetime,
    wanted: int,
    used_last_hour: int,
    in_flight: int,
) -> tuple[int, BudgetState]:
    """How many of `wanted` polls may start at `now`, and the state after starting them."""
    state = _fresh(state, now)
    if state.paused_until is not None:
        return 0, state
    cap = min(wanted, limits.polls_per_hour - used_last_hour, limits.max_concurrency - in_flight)
    if state.remaining is not None:
        cap = min(cap, state.remaining)
    step = timedelta(seconds=interval(state, limits, now))
    # No burst while the upstream counts for us: its remaining polls are spread evenly to the reset.
    tolerance = step * (BURST - 1) if state.remaining is None else timedelta(0)
    tat = max(state.next_slot_at or now, now)
    granted = 0
    while granted < cap and tat - now <= tolerance:
        tat += step
        granted += 1
    if granted == 0:
        return 0, state
    remaining = None if state.remaining is None else state.remaining - granted
    return granted, replace(state, next_slot_at=tat, remaining=remaining)


def next_grant_at(
    state: BudgetState, *, limits: Limits, now: datetime, oldest_in_window: datetime | None
) -> datetime:
    """The earliest moment a poll could be granted again (lets the claim skip idle accounts)."""
    state = _fresh(state, now)
    step = timedelta(seconds=interval(state, limits, now))
    moments = [now]
    if state.next_slot_at is not None:
        burst = BURST - 1 if state.remaining is None else 0
        moments.append(state.next_slot_at - step * burst)
    if state.paused_until is not None:
        moments.append(state.paused_until)
    if state.remaining is not None and state.remaining <= 0 and state.reset_at is not None:
        moments.append(state.reset_at)
    if oldest_in_window is not None:
        moments.append(oldest_in_window + HOUR)
    return max(moments)


def decide(demand: AccountDemand, *, limits: Limits, now: datetime) -> BudgetGrant:
    """The claim's policy for one account: grant what the budget allows, to the due jobs clients'
    turns pick (`fair_order`), and say when to ask again."""
    order = fair_order(demand.queue, demand.last_served)
    count, state = grant(
        demand.budget,
        limits=limits,
        now=now,
        wanted=len(order),
        used_last_hour=demand.used_last_hour,
        in_flight=demand.in_flight,
    )
    full = demand.used_last_hour + count >= limits.polls_per_hour
    earliest = next_grant_at(
        state,
        limits=limits,
        now=now,
        oldest_in_window=(demand.oldest_in_window or now) if full else None,
    )
    return BudgetGrant(tuple(order[:count]), state, earliest)


def observe(
    state: BudgetState,
    *,
    now: datetime,
    remaining: int | None,
    reset_at: datetime | None,
    retry_after_s: float | None = None,
    rate_limited: bool = False,
) -> BudgetState:
    """Fold what one upstream response said about the budget into the state."""
    if remaining is not None and reset_at is not None and reset_at > now:
        state = replace(state, remaining=max(remaining, 0), reset_at=reset_at)
    if rate_limited:
        pause = retry_after_s if retry_after_s is not None else DEFAULT_PAUSE_S
        until = now + timedelta(seconds=max(pause, 1.0))
        state = replace(state, paused_until=max(until, state.paused_until or until))
    elif state.remaining is not None and state.remaining <= 0 and state.reset_at is not None:
        state = replace(state, paused_until=max(state.reset_at, state.paused_until or now))
    return state
