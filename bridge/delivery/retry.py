"""next_step(...): the one retry policy: after an attempt, delivered, retry later or dead. Pure.

The rules (CONTRACT section 5):

- no error (2xx) -> delivered;
- a failure the channel classified as permanent (`bridge.delivery.failures`: 410 Gone, Slack's
  dead ends, SMTP 5xx) -> dead at once;
- anything else (429, 5xx, other 4xx, 3xx, timeouts, connection errors, a bug in a channel) ->
  retried after `schedule[attempts - 1]` seconds; once the schedule is used up -> dead.

Jitter spreads retries that failed together (a receiver that was down) so they do not all come
back in the same second: the delay is the scheduled one times a factor in [1, 1 + JITTER), never
below the schedule, so an operator's schedule is a floor they can rely on. A `Retry-After` asking
for longer is honoured as given (no jitter: the receiver named its time), but at most
RETRY_AFTER_EXTRA_S beyond the scheduled delay, as Svix does, so a receiver cannot park a delivery
for a day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from bridge.delivery.channels import SendError

JITTER = 0.1
RETRY_AFTER_EXTRA_S = 2 * 3600.0  # a Retry-After may add at most this to the schedule

Outcome = Literal["delivered", "pending", "dead"]


@dataclass(frozen=True, slots=True)
class Step:
    """What happens to a delivery after one attempt: its new status and, if pending, the wait."""

    status: Outcome
    delay_s: float | None = None


def next_step(
    *,
    attempts: int,
    error: SendError | None,
    schedule: Sequence[float],
    random: Callable[[], float],
) -> Step:
    """Decide the delivery's fate after its `attempts`-th attempt; `random()` returns [0, 1)."""
    if error is None:
        return Step("delivered")
    if error.permanent:
        return Step("dead")
    if attempts < 1:
        raise ValueError("attempts counts the attempt just made, so it is at least 1")
    if attempts > len(schedule):
        return Step("dead")
    scheduled = schedule[attempts - 1]
    delay = scheduled * (1.0 + JITTER * min(max(random(), 0.0), 1.0))
    if error.retry_after_s is not None:
        delay = max(delay, min(error.retry_after_s, scheduled + RETRY_AFTER_EXTRA_S))
    return Step("pending", delay)
