"""FakeClock: the one clock tests move by hand, injected wherever the code takes `now`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """Call it (or `.now()`) for an aware UTC datetime; `.monotonic()` for seconds; `.advance()`."""

    moment: datetime = T0

    def __call__(self) -> datetime:
        return self.moment

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return self.moment.timestamp()

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        self.moment += timedelta(seconds=seconds, **delta)
