"""Recorder: writes delivery attempts in batches, so sends never wait on one another's writes:
whatever queued up during one write goes in the next, and a batch smaller than GATHER_UNTIL waits
GATHER_S for more first while more may come (sends are under way). A write's cost is mostly per
statement, not per row (in the delivery harness on PostgreSQL, batches of ~11 became 33-46 and the
CPU per delivery fell by 8%); a result waiting to be written holds back only the next event of its
own stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bridge.clock import Clock
from bridge.store.outbox import AttemptResult, Outbox

log = logging.getLogger(__name__)

GATHER_S = 0.005  # how long a small batch waits for more results before it is written
GATHER_UNTIL = 64  # a batch this big is written at once

Done = Callable[[bool], None]  # told True once the attempt is committed, False if its write failed
_Queued = tuple[AttemptResult, Clock, Done]


class Recorder:
    """One writer at a time for one replica's attempts (`owner` must still hold each lease).

    A send hands its result over and is over (`submit`); the writer tells each result's `done`
    when its batch is written, so no send waits on a future of its own (one future and one task
    wake-up less per delivery)."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        owner: str,
        gather_s: float = GATHER_S,
        expecting: Callable[[], bool] = lambda: True,
    ) -> None:
        self._outbox = outbox
        self._owner = owner
        self._gather_s = gather_s
        self._expecting = expecting  # whether more results may come soon (sends are under way)
        self._queued: list[_Queued] = []
        self._writing: list[_Queued] = []  # the batch being written now
        self._writer: asyncio.Task[None] | None = None

    def submit(self, result: AttemptResult, *, now: Clock, done: Done) -> None:
        """Queue the result; `done(True)` once it is committed, `done(False)` if the write failed
        (logged once per batch: its lease ends and it comes back)."""
        self._queued.append((result, now, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
            self._writer.add_done_callback(self._ended)

    def _ended(self, writer: asyncio.Task[None]) -> None:
        """A writer cancelled (shutdown), mid-write or before its first step: nothing more is
        written, and every result it held or would have taken hears False."""
        if writer.cancelled():
            rest, self._writing, self._queued = self._writing + self._queued, [], []
            _tell(rest, False)

    async def drain(self) -> None:
        """Wait until every submitted result is written or given up."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})

    def cancel(self) -> None:
        """Stop writing (shutting down past its deadline): what was not written is told False."""
        if self._writer is not None:
            self._writer.cancel()

    async def _write(self) -> None:
        while self._queued:
            if len(self._queued) < GATHER_UNTIL and self._gather_s > 0 and self._expecting():
                await asyncio.sleep(self._gather_s)
            self._writing, self._queued = self._queued, []
            await self._write_batch(self._writing)
            self._writing = []

    async def _write_batch(self, batch: list[_Queued]) -> None:
        try:
            await self._outbox.record_attempts(
                [result for result, _, _ in batch], now=batch[-1][1](), owner=self._owner
            )
        except Exception:
            log.exception(
                "could not record delivery attempts; they are tried again when leases end",
                extra={"count": len(batch)},
            )
            _tell(batch, False)
            return
        _tell(batch, True)


def _tell(batch: list[_Queued], written: bool) -> None:
    for _, _, done in batch:
        try:
            done(written)
        except Exception:
            log.exception("a recorded delivery's follow-up failed")
