"""Pacer: at most one Slack message per interval per channel, and none while Slack said to wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bridge.delivery.channels import SendError

Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """At most one message per `interval_s` per Slack channel, and none while Slack said to wait."""

    def __init__(
        self,
        *,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}
        self._held_until: dict[str, float] = {}

    async def wait(self, channel: str) -> None:
        """Return when `channel` may take the next message; raise SendError while it is held."""
        async with self._locks.setdefault(channel, asyncio.Lock()):
            now = self._clock()
            held_until = self._held_until.get(channel, 0.0)
            if now < held_until:
                # Fail fast instead of sleeping through a Retry-After: delivery reschedules.
                raise SendError(
                    "Slack asked to wait (ratelimited)",
                    status_code=429,
                    retry_after_s=held_until - now,
                )
            last = self._last.get(channel)
            if last is not None and now - last < self._interval_s:
                await self._sleep(self._interval_s - (now - last))
            self._last[channel] = self._clock()

    def hold(self, channel: str, seconds: float) -> None:
        """Send nothing to `channel` for `seconds` (Slack's Retry-After)."""
        until = self._clock() + seconds
        self._held_until[channel] = max(until, self._held_until.get(channel, 0.0))
