"""Background: APScheduler as a clock that calls poll_due() and dispatch_due(), and a clean drain."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)

Step = Callable[[datetime | None], Awaitable[int]]
MAX_LOOP_S = 5.0  # one tick keeps going while work is due, then yields to the next tick
CANCEL_WAIT_S = 5.0  # how long stop() waits for a cancelled step to end


def replica_id() -> str:
    """A name for this process in leases: host, pid and a random tag."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Background:
    """Runs each step every `interval_s`; a step that finds a full batch runs again at once."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._running: set[asyncio.Task[None]] = set()
        self._busy: set[str] = set()
        self._again: set[str] = set()
        self._stopping = False

    @property
    def running(self) -> bool:
        """True while the scheduler is started and not draining."""
        return self._scheduler.running and not self._stopping

    def start(self, steps: dict[str, tuple[Step, float]]) -> None:
        """Schedule every step (name: (step, interval_s)); call from the running event loop."""
        for name, (step, interval_s) in steps.items():
            self._scheduler.add_job(
                self._tick,
                "interval",
                seconds=interval_s,
                args=[name, step],
                id=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                # Short steps start at once; long ones (housekeeping) one interval from now.
                next_run_time=datetime.now(UTC)
                + timedelta(seconds=0 if interval_s <= 30 else interval_s),
            )
        self._scheduler.start()

    def nudge(self, name: str) -> None:
        """Run step `name` as soon as possible: new work for it has just been committed."""
        if not self.running:
            return
        if name in self._busy:
            self._again.add(name)  # the running tick takes one more round
            return
        job = self._scheduler.get_job(name)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    async def _tick(self, name: str, step: Step) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        self._busy.add(name)
        try:
            started = time.monotonic()
            while not self._stopping:
                self._again.discard(name)
                done = await step(None)
                more = done > 0 or name in self._again
                if not more or time.monotonic() - started > MAX_LOOP_S:
                    break
        except Exception:
            log.exception(
                "background step failed; it runs again at its next tick", extra={"step": name}
            )
        finally:
            self._busy.discard(name)
            self._running.discard(task)

    async def stop(self, *, timeout_s: float = 30.0) -> None:
        """Stop scheduling, then let in-flight steps finish (drain) within `timeout_s`.

        The scheduler is paused, not shut down, while steps finish: APScheduler's asyncio executor
        cancels the steps still running when it shuts down, which cut a claim off mid-way."""
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.pause()
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CANCEL_WAIT_S)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
