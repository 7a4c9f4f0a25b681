import pytest

from bridge.api.ratelimit import RateLimiter, retry_after_header
from tests.clock import FakeClock


def test_ratelimiter_allows_the_burst_then_waits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock.monotonic)
    assert [limiter.acquire("shop") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("shop") == pytest.approx(0.5)


def test_ratelimiter_refills_at_the_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock.monotonic)
    for _ in range(3):
        limiter.acquire("shop")
    clock.advance(0.5)
    assert limiter.acquire("shop") == 0.0
    assert limiter.acquire("shop") > 0
    clock.advance(3600)
    assert [limiter.acquire("shop") for _ in range(4)][-1] > 0


def test_ratelimiter_keeps_a_bucket_per_client() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, clock=FakeClock().monotonic)
    assert limiter.acquire("shop") == 0.0
    assert limiter.acquire("shop") > 0
    assert limiter.acquire("studio") == 0.0


def test_ratelimiter_refused_requests_cost_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=1.0, burst=1, clock=clock.monotonic)
    limiter.acquire("shop")
    for _ in range(10):
        limiter.acquire("shop")
    clock.advance(1.0)
    assert limiter.acquire("shop") == 0.0


def test_ratelimiter_defaults_are_generous() -> None:
    limiter = RateLimiter(clock=FakeClock().monotonic)
    assert (limiter.rate_per_s, limiter.burst) == (20.0, 100)
    assert all(limiter.acquire("shop") == 0.0 for _ in range(100))
    assert limiter.acquire("shop") == pytest.approx(0.05)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_ratelimiter_rejects_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=rate, burst=burst)


@pytest.mark.parametrize(
    ("wait", "header"), [(0.0001, "1"), (0.5, "1"), (1.0, "1"), (1.01, "2"), (59.5, "60")]
)
def test_retry_after_header_rounds_up_to_whole_seconds(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header
