"""Deliverer.deliver_due(now): claim due outbox rows, send each once, record it, schedule the retry.

Sends run concurrently (bounded); their results are written as they come in, a batch per
transaction, so one slow receiver does not hold back the record of the others. Whether and when to
retry is decided in one place, `bridge.delivery.retry.next_step`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from bridge.clock import Clock
from bridge.config import DeliveryConfig
from bridge.delivery.channels import Message, SendError, SendResult
from bridge.delivery.channels.registry import ChannelRegistry, DestinationError
from bridge.delivery.retry import next_step
from bridge.ops.metrics import Metrics
from bridge.store import Store
from bridge.store.outbox import AttemptResult, ClaimedDelivery

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 32
LEASE_MARGIN_S = (
    10.0  # sends end this long before the lease does, so no replica re-claims a live send
)


class Deliverer:
    """Sends due deliveries for one replica (`owner` names it in leases)."""

    def __init__(
        self,
        *,
        store: Store,
        channels: ChannelRegistry,
        settings: DeliveryConfig,
        metrics: Metrics,
        now: Clock,
        owner: str,
        rng: random.Random | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._now = now
        self._channels = channels
        self._owner = owner
        self._rng = rng or random.Random()
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: set[str] = set()
        self._rounds = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    def lease_s(self, limit: int) -> float:
        """A batch's lease: every wave of sends timing out, plus margins."""
        waves = math.ceil(limit / self._concurrency) + 1
        return waves * self._settings.timeout_s + 2 * LEASE_MARGIN_S

    async def deliver_due(self, now: datetime | None = None, *, limit: int = 200) -> int:
        """Claim up to `limit` due deliveries, try each once, record it; return attempts made."""
        if self._closed:
            return 0
        clock: Callable[[], datetime] = (lambda: now) if now is not None else self._now
        self._rounds += 1
        self._idle.clear()
        try:
            lease_s = self.lease_s(limit)
            claimed = await self._store.outbox.claim_due(
                now=clock(), owner=self._owner, lease_s=lease_s, limit=limit
            )
            # A row this process still sends (its lease ran out meanwhile) is not sent twice.
            rows = [row for row in claimed if row.id not in self._in_flight]
            deadline = asyncio.get_running_loop().time() + lease_s - LEASE_MARGIN_S
            return await self._send_all(rows, clock=clock, deadline=deadline)
        finally:
            self._rounds -= 1
            if self._rounds == 0:
                self._idle.set()

    async def _send_all(
        self, rows: list[ClaimedDelivery], *, clock: Callable[[], datetime], deadline: float
    ) -> int:
        results: asyncio.Queue[AttemptResult | None] = asyncio.Queue()
        writer = asyncio.create_task(self._write(results, clock=clock))

        loop = asyncio.get_running_loop()
        tried = 0

        async def one(row: ClaimedDelivery) -> None:
            nonlocal tried
            self._in_flight.add(row.id)
            try:
                async with self._slots:
                    if loop.time() >= deadline:
                        return  # no time left to send within the lease: it comes back when it ends
                    results.put_nowait(await self._attempt(row, clock=clock, deadline=deadline))
                    tried += 1
            finally:
                self._in_flight.discard(row.id)

        try:
            await asyncio.gather(*(one(row) for row in rows))
        finally:
            results.put_nowait(None)
            await writer
        return tried

    async def _write(
        self, results: asyncio.Queue[AttemptResult | None], *, clock: Callable[[], datetime]
    ) -> None:
        """Record results as they arrive: whatever queued up during one write goes in the next."""
        done = False
        while not done:
            batch = [await results.get()]
            while not results.empty():
                batch.append(results.get_nowait())
            done = None in batch
            ready = [r for r in batch if r is not None]
            if ready:
                await self._store.outbox.record_attempts(ready, now=clock(), owner=self._owner)

    async def _attempt(
        self, row: ClaimedDelivery, *, clock: Callable[[], datetime], deadline: float
    ) -> AttemptResult:
        attempted_at = clock()
        started = time.perf_counter()
        try:
            async with asyncio.timeout_at(deadline):
                sent: SendResult | SendError = await self._send(row)
        except TimeoutError:
            sent = SendError("timed out: the delivery's lease was about to expire")
        duration_ms = (time.perf_counter() - started) * 1000.0
        error = sent if isinstance(sent, SendError) else None
        step = next_step(
            attempts=row.attempts + 1,
            error=error,
            schedule=self._settings.retry_schedule_s,
            random=self._rng.random,
        )
        finished = clock()
        result = AttemptResult(
            delivery_id=row.id,
            attempted_at=attempted_at,
            duration_ms=duration_ms,
            status=step.status,
            next_attempt_at=(
                finished + timedelta(seconds=step.delay_s) if step.delay_s is not None else None
            ),
            status_code=sent.status_code,
            error=str(error) if error is not None else None,
            response_excerpt=sent.response_excerpt,
        )
        self._observe(row, result, finished=finished)
        return result

    async def _send(self, row: ClaimedDelivery) -> SendResult | SendError:
        """One attempt through the row's channel; every failure comes back as a SendError."""
        try:
            channel = self._channels.for_destination(
                row.destination, webhook_url=row.webhook_url, client=row.client
            )
            return await channel.send(_message(row))
        except SendError as exc:
            return exc
        except DestinationError as exc:
            return SendError(str(exc))
        except Exception as exc:
            # A channel must raise SendError; anything else is a bug, retried like any failure.
            log.exception(
                "channel raised an unexpected error",
                extra={"delivery_id": row.id, "destination": row.destination},
            )
            return SendError(f"internal error in channel: {type(exc).__name__}")

    def _observe(self, row: ClaimedDelivery, result: AttemptResult, *, finished: datetime) -> None:
        """Metrics and one structured log line per attempt (no URLs: they may carry secrets)."""
        kind = self._channels.kind(row.destination)
        label = {"pending": "retry"}.get(result.status, result.status)
        self._metrics.deliveries.labels(kind=kind, result=label).inc()
        fields = {
            "delivery_id": row.id,
            "event_id": row.event_id,
            "watch_id": row.watch_id,
            "destination": row.destination,
            "attempt": row.attempts + 1,
            "status_code": result.status_code,
            "duration_ms": round(result.duration_ms, 1),
        }
        if result.status == "delivered":
            latency_s = (finished - row.created_at).total_seconds()
            self._metrics.delivery_latency.observe(max(latency_s, 0.0))
            log.info("delivered", extra=fields)
        elif result.status == "pending":
            next_at = result.next_attempt_at.isoformat() if result.next_attempt_at else None
            log.warning(
                "delivery failed; will retry",
                extra={**fields, "error": result.error, "next_attempt_at": next_at},
            )
        else:
            log.warning("delivery dead", extra={**fields, "error": result.error})

    async def aclose(self, *, timeout_s: float = 30.0) -> None:
        """Stop taking new work, let in-flight sends finish and be recorded, close the channels."""
        self._closed = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=timeout_s)
        except TimeoutError:
            log.warning("deliveries still in flight at shutdown; their leases will expire")
        await self._channels.aclose()


def _message(row: ClaimedDelivery) -> Message:
    return Message(
        delivery_id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        timestamp=row.event_created_at,
        payload=row.payload,
        job=row.job,
        attempt=row.attempts + 1,
    )
