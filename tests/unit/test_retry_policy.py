import pytest

from bridge.config import DEFAULT_RETRY_SCHEDULE_S
from bridge.delivery.channels import SendError
from bridge.delivery.retry import JITTER, RETRY_AFTER_EXTRA_S, Step, next_step

SCHEDULE = [5.0, 300.0, 1800.0]


def err(status=None, *, retry_after=None, permanent=False):
    return SendError("failed", status_code=status, retry_after_s=retry_after, permanent=permanent)


@pytest.mark.parametrize(
    ("attempts", "error", "expected"),
    [
        (1, None, Step("delivered")),
        (3, None, Step("delivered")),
        (4, None, Step("delivered")),  # a success after the schedule still counts
        (1, err(410, permanent=True), Step("dead")),
        (1, err(None, permanent=True), Step("dead")),
        (1, err(400, permanent=True), Step("dead")),
        (1, err(500), Step("pending", 5.0)),
        (1, err(503), Step("pending", 5.0)),
        (2, err(502), Step("pending", 300.0)),
        (3, err(500), Step("pending", 1800.0)),
        (4, err(500), Step("dead")),  # schedule used up
        (1, err(429), Step("pending", 5.0)),
        (1, err(429, retry_after=60), Step("pending", 60.0)),  # longer Retry-After honoured
        (2, err(429, retry_after=60), Step("pending", 300.0)),  # shorter one is not
        (2, err(503, retry_after=301), Step("pending", 301.0)),
        # A Retry-After adds at most two hours to the scheduled delay (as Svix does).
        (1, err(429, retry_after=1e12), Step("pending", 5.0 + RETRY_AFTER_EXTRA_S)),
        (1, err(429, retry_after=86_400), Step("pending", 5.0 + 7200.0)),
        (3, err(503, retry_after=86_400), Step("pending", 1800.0 + 7200.0)),
        (1, err(503, retry_after=7205), Step("pending", 7205.0)),  # exactly at the cap
        (1, err(503, retry_after=7206), Step("pending", 7205.0)),
        (4, err(429, retry_after=60), Step("dead")),  # Retry-After does not extend the schedule
        (1, err(None), Step("pending", 5.0)),  # timeout or connection error
        (1, err(400), Step("pending", 5.0)),
        (1, err(404), Step("pending", 5.0)),
        (1, err(401), Step("pending", 5.0)),
        (1, err(301), Step("pending", 5.0)),  # redirects are not followed: a failure
        (2, err(409), Step("pending", 300.0)),
    ],
)
def test_next_step_table(attempts, error, expected):
    assert (
        next_step(attempts=attempts, error=error, schedule=SCHEDULE, random=lambda: 0.0) == expected
    )


@pytest.mark.parametrize(
    ("draw", "factor"), [(0.0, 1.0), (0.5, 1.0 + JITTER / 2), (0.999, 1.0 + JITTER * 0.999)]
)
def test_next_step_jitter_is_never_below_the_schedule(draw, factor):
    step = next_step(attempts=2, error=err(500), schedule=SCHEDULE, random=lambda: draw)
    assert step.status == "pending"
    assert step.delay_s == pytest.approx(300.0 * factor)
    assert 300.0 <= step.delay_s < 300.0 * (1 + JITTER)


def test_next_step_retry_after_is_not_jittered():
    step = next_step(
        attempts=1, error=err(429, retry_after=90), schedule=SCHEDULE, random=lambda: 0.9
    )
    assert step == Step("pending", 90.0)


def test_next_step_zero_delay_schedule_retries_at_once():
    assert next_step(attempts=1, error=err(500), schedule=[0.0], random=lambda: 0.7) == Step(
        "pending", 0.0
    )


def test_next_step_default_schedule_gives_eight_attempts():
    steps = [
        next_step(attempts=n, error=err(500), schedule=DEFAULT_RETRY_SCHEDULE_S, random=lambda: 0.0)
        for n in range(1, 10)
    ]
    assert [s.delay_s for s in steps[:7]] == DEFAULT_RETRY_SCHEDULE_S
    assert [s.status for s in steps] == ["pending"] * 7 + ["dead"] * 2


def test_next_step_rejects_zero_attempts():
    with pytest.raises(ValueError, match="at least 1"):
        next_step(attempts=0, error=err(500), schedule=SCHEDULE, random=lambda: 0.0)
