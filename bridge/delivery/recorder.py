"""Recorder: writes delivery attempts as they come in, whatever queued up during one write going in
the next, so sends never wait on one another's writes and the database sees batches."""

from __future__ import annotations

import asyncio
import logging

from bridge.clock import Clock
from bridge.store.outbox import AttemptResult, Outbox

log = logging.getLogger(__name__)

_Queued = tuple[AttemptResult, Clock, "asyncio.Future[None]"]


class NotRecorded(Exception):
    """The write of an attempt failed (logged once per batch): its lease ends and it comes back."""


class Recorder:
    """One writer at a time for one replica's attempts (`owner` must still hold each lease)."""

    def __init__(self, outbox: Outbox, *, owner: str) -> None:
        self._outbox = outbox
        self._owner = owner
        self._queued: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, result: AttemptResult, *, now: Clock) -> None:
        """Queue the result and wait until it is committed; NotRecorded if the write failed."""
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((result, now, committed))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await committed

    async def _write(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                await self._outbox.record_attempts(
                    [result for result, _, _ in batch], now=batch[-1][1](), owner=self._owner
                )
            except Exception:
                log.exception(
                    "could not record delivery attempts; they are tried again when leases end",
                    extra={"count": len(batch)},
                )
                for _, _, committed in batch:
                    if not committed.done():
                        committed.set_exception(NotRecorded())
            else:
                for _, _, committed in batch:
                    if not committed.done():
                        committed.set_result(None)
