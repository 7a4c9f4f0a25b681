"""SignInThrottle: failed console sign-ins are limited per address and overall, so a token cannot
be guessed at speed from one address or from many."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

PER_ADDRESS = 5  # failures per address per window
OVERALL = 30  # failures from every address together per window
WINDOW_S = 60.0


class SignInThrottle:
    """Counts failed sign-ins in a sliding window; `wait_s` says how long a caller must wait."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float],
        per_address: int = PER_ADDRESS,
        overall: int = OVERALL,
        window_s: float = WINDOW_S,
    ) -> None:
        self._monotonic = monotonic
        self._per_address = per_address
        self._overall = overall
        self._window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _trim(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self._window_s:
            times.popleft()

    def wait_s(self, address: str) -> float:
        """Seconds until `address` may try again (0 when it may now)."""
        now = self._monotonic()
        self._trim(self._all, now)
        mine = self._failures.get(address, deque())
        self._trim(mine, now)
        if not mine:
            self._failures.pop(address, None)
        waits = [0.0]
        if len(mine) >= self._per_address:
            waits.append(mine[0] + self._window_s - now)
        if len(self._all) >= self._overall:
            waits.append(self._all[0] + self._window_s - now)
        return max(waits)

    def failed(self, address: str) -> None:
        """Count one failed sign-in from `address`."""
        now = self._monotonic()
        self._failures.setdefault(address, deque()).append(now)
        self._all.append(now)
        if len(self._failures) > 10_000:  # a flood of addresses: forget the quietest
            for key in [k for k, v in self._failures.items() if len(v) < 2][:5_000]:
                del self._failures[key]
