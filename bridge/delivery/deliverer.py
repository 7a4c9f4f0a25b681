"""Deliverer: claim due outbox rows while sends are in flight, send each once, record it.

Not in rounds: claimed rows wait in their destination's lane (`bridge.delivery.lanes`), each
send runs on its own, and when it ends the lane's next row starts; the scheduler's step
(`dispatch_due`) claims again whenever a lane has emptied, so one slow receiver holds back only
its own lane. Per watch and destination, event N+1 is not claimed while event N is pending (the
outbox's claim), so order holds however sends overlap. Results are written in batches
(`bridge.delivery.recorder`). Whether and when to retry is decided in one place,
`bridge.delivery.retry.next_step`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bridge.clock import Clock
from bridge.config import DeliveryConfig
from bridge.delivery.channels import Channel, SendError, SendResult
from bridge.delivery.channels.registry import ChannelRegistry, DestinationError
from bridge.delivery.lanes import FAST_S, Destination, Held, Lanes
from bridge.delivery.messages import build_message, claimed_views, deferred_result
from bridge.delivery.recorder import Recorder
from bridge.delivery.retry import next_step
from bridge.ops.metrics import Metrics
from bridge.store import Store
from bridge.store.outbox import AttemptResult, ClaimedDelivery

log = logging.getLogger(__name__)

MAX_SENDING = 64  # sends under way in one replica
PER_DESTINATION = 4  # of which to one configured channel; to one receiver (URL origin) at first
PER_RECEIVER_FAST = 32  # to a receiver that keeps answering 2xx within lanes.FAST_S
# A claim costs about the same whatever it takes (it reads every pending row once: the heads'
# window), so a busy receiver's lane is filled in batches of about REFILL_AT: half as many claims
# as at 256/128 made SQLite's drain about a tenth faster, PostgreSQL's about 4%.
LANE_DEPTH = 512  # claimed rows one destination may hold (sending, waiting or being recorded)
REFILL_AT = 256  # a lane is claimed for again when no more than this many rows still wait
MAX_HELD = 8 * LANE_DEPTH  # claimed rows one replica may hold: a few hanging receivers' full
# lanes still leave room for everyone else's
CLAIM_READ = 512  # rows one claim leases at most
FIRST_CLAIM = 64  # or this many when nothing is held: they go out while the next claim reads more
LEASE_MARGIN_S = 10.0  # a send ends this long before its lease does: no replica re-claims it live
LEASE_WAIT_S = 120.0  # how long a lease lets a row wait in its lane (at least 2 turns)
CANCEL_WAIT_S = 5.0  # how long shutdown waits for a cancelled write to end


def default_lanes() -> Lanes:
    """The lanes `serve` delivers through (the limits above)."""
    return Lanes(
        sending=MAX_SENDING,
        per_destination=PER_DESTINATION,
        held=MAX_HELD,
        depth=LANE_DEPTH,
        refill_at=REFILL_AT,
        grow_to=PER_RECEIVER_FAST,
    )


class Deliverer:
    """Sends due deliveries for one replica (`owner` names it in leases).

    `on_free` is called when a send is over and its lane wants more rows: the cue to claim.
    """

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
        lanes: Lanes | None = None,
        on_free: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._now = now
        self._channels = channels
        self._owner = owner
        self._rng = rng or random.Random()
        self._on_free = on_free
        self._lanes = lanes or default_lanes()
        self._claiming = asyncio.Lock()  # one claim at a time: each sees what the last took
        self._wanting: set[Destination] = set()  # lanes that asked for more while a claim ran
        self._sends: set[asyncio.Task[None]] = set()
        self._recorder = Recorder(
            store.outbox, owner=owner, expecting=lambda: self._lanes.sending() > 0
        )
        self._counters: dict[tuple[str, str], Any] = {}
        self._closed = False

    def held(self) -> int:
        """Claimed rows this replica holds now: waiting, being sent or being recorded."""
        return self._lanes.held()

    @property
    def lease_s(self) -> float:
        """A claim's lease: a row waits its turns in the lane (each a whole timeout at worst), then
        sends; plus margins. Turns stop at LEASE_WAIT_S' worth: the rows further back in the lane
        of a receiver that hangs are handed back unsent as their leases run short (`_pump`), and
        a crashed replica's rows wait minutes, not a full lane's worst case, to be claimed again."""
        timeout_s = self._settings.timeout_s
        full_lane = math.ceil(self._lanes.depth / self._lanes.per_destination)
        turns = min(full_lane, max(2, math.ceil(LEASE_WAIT_S / timeout_s)))
        return turns * timeout_s + 2 * LEASE_MARGIN_S

    async def dispatch_due(self, now: datetime | None = None) -> int:
        """Claim due deliveries into the lanes with room and start what may start (the
        scheduler's step); return how many it claimed when more may be due, else 0."""
        # A burst's first rows start sooner: reading and leasing 512 took 20-40 ms.
        limit = FIRST_CLAIM if self._lanes.held() == 0 else CLAIM_READ
        held, more = await self._dispatch(now, limit=limit)
        return len(held) if more else 0

    async def deliver_due(self, now: datetime | None = None, *, limit: int = 200) -> int:
        """Claim due deliveries (at most `limit`), send each once and wait until each is
        recorded; return the attempts made (tests, benches, one-off runs)."""
        held, _ = await self._dispatch(now, limit=limit)
        return sum(await asyncio.gather(*(h.finished for h in held)))

    async def _dispatch(self, now: datetime | None, *, limit: int) -> tuple[list[Held], bool]:
        """Claim and queue rows; returns them and whether the claim may have left due rows."""
        clock: Clock = (lambda: now) if now is not None else self._now
        loop = asyncio.get_running_loop()
        async with self._claiming:
            room = min(limit, self._lanes.room())
            if self._closed or room <= 0:
                return [], False
            claimed = await self._store.outbox.claim_due(
                now=clock(),
                owner=self._owner,
                lease_s=self.lease_s,
                limit=room,
                busy=self._lanes.busy(),
                admit=self._lanes.admission(limit=room),
            )
            views = await claimed_views(self._store, claimed, now=clock(), owner=self._owner)
            if views is None:
                return [], False
            deadline = loop.time() + self.lease_s - LEASE_MARGIN_S
            held = [
                Held(row, clock, deadline, loop.create_future(), views.get(row.id))
                for row in claimed
            ]
            for one in held:
                self._lanes.hold(one)
        self._pump()
        wanting, self._wanting = self._wanting, set()
        if any(self._lanes.claimable(where) for where in wanting):
            self._wake()
        # Rows refused here were for lanes now full, which the next claim passes over; other
        # lanes' rows past what was read come with the next tick or nudge. Rows another replica
        # took first leave room that may be filled at once.
        return held, len(claimed) == room or claimed.passed_over > 0

    def _pump(self) -> None:
        """Start every waiting row its lane and the replica have room for (in turns while rows
        are given up, each freeing a place, rather than one call deeper per row)."""
        now = asyncio.get_running_loop().time()
        while ready := self._lanes.take_ready():
            expired = False
            for held in ready:
                if held.deadline - now < self._settings.timeout_s:
                    # No time left for a whole send within its lease: it comes back when that ends.
                    self._finish(held, attempted=False, pump=False)
                    expired = True
                    continue
                task = asyncio.create_task(self._send_and_record(held))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
            if not expired:
                return

    async def _send_and_record(self, held: Held) -> None:
        """One attempt, handed to the recorder; its lane's place is freed once it is written, or
        at once if it could not be made."""
        submitted = False
        try:
            result = await self._attempt(held, clock=held.clock, deadline=held.deadline)
            fast = result.status == "delivered" and result.duration_ms <= FAST_S * 1000.0
            self._lanes.sent(held.row.id, fast=fast)
            self._pump()  # the lane's next row need not wait for this one's write
            self._recorder.submit(
                result, now=held.clock, done=functools.partial(self._finish, held)
            )
            submitted = True
        except Exception:
            log.exception(
                "delivery attempt failed unexpectedly; it is tried again when its lease ends",
                extra={"delivery_id": held.row.id, "destination": held.row.destination},
            )
        finally:
            if not submitted:
                self._finish(held, attempted=False)

    def _finish(self, held: Held, attempted: bool, *, pump: bool = True) -> None:
        """A row is done with (`attempted`: its attempt is recorded): free its place."""
        where = self._lanes.finish(held.row.id)
        if not held.finished.done():
            held.finished.set_result(attempted)
        if pump:
            self._pump()
        # A lane down to its refill mark takes more, once per batch; an empty one at every send
        # (the next event of this watch may be due now).
        if where is None or not self._lanes.wants_claim(where):
            return
        if self._claiming.locked():
            self._wanting.add(where)  # that claim may have read before this row was written
        else:
            self._wake()

    def _wake(self) -> None:
        if self._on_free is not None:
            self._on_free()

    async def _attempt(
        self, held: Held, *, clock: Callable[[], datetime], deadline: float
    ) -> AttemptResult:
        row = held.row
        attempted_at = clock()
        started = time.perf_counter()
        channel = self._channel(row)
        sent: SendResult | SendError
        if isinstance(channel, SendError):
            sent = channel
        elif getattr(channel, "ends_within_timeout", False) is True:
            # It gives up after the configured timeout, which the lease still had room for when
            # the row started (`_pump`): no second timer.
            sent = await self._send(channel, row, held.import_view)
        else:
            try:
                async with asyncio.timeout_at(deadline):
                    sent = await self._send(channel, row, held.import_view)
            except TimeoutError:
                sent = SendError("timed out: the delivery's lease was about to expire")
        duration_ms = (time.perf_counter() - started) * 1000.0
        if isinstance(sent, SendResult) and sent.defer_until is not None:
            return deferred_result(row, sent, attempted_at=attempted_at, duration_ms=duration_ms)
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

    def _channel(self, row: ClaimedDelivery) -> Channel | SendError:
        """The row's channel, or why it has none (an attempt all the same: it is recorded and
        counted, and the delivery goes dead in the end rather than block its stream)."""
        try:
            return self._channels.for_destination(
                row.destination, webhook_url=row.webhook_url, client=row.client
            )
        except DestinationError as exc:
            # A channel gone from the config, a client without secrets: no retry can fix it.
            return SendError(str(exc), permanent=True)
        except Exception as exc:
            log.exception(
                "channel could not be built",
                extra={"delivery_id": row.id, "destination": row.destination},
            )
            return SendError(f"internal error in channel: {type(exc).__name__}")

    async def _send(
        self, channel: Channel, row: ClaimedDelivery, view: Mapping[str, Any] | None
    ) -> SendResult | SendError:
        """One attempt through the row's channel; every failure comes back as a SendError."""
        try:
            return await channel.send(build_message(row, view))
        except SendError as exc:
            return exc
        except Exception as exc:
            # A channel must raise SendError; anything else is a bug, retried like any failure.
            log.exception(
                "channel raised an unexpected error",
                extra={"delivery_id": row.id, "destination": row.destination},
            )
            return SendError(f"internal error in channel: {type(exc).__name__}")

    def _observe(self, row: ClaimedDelivery, result: AttemptResult, *, finished: datetime) -> None:
        """Metrics and a structured log line per attempt: a failure at warning, a dead delivery at
        error, a delivered one at debug."""
        kind = self._channels.kind(row.destination)
        label = {"pending": "retry"}.get(result.status, result.status)
        counter = self._counters.get((kind, label))
        if counter is None:  # one labelled child per (kind, result), looked up once
            counter = self._counters[kind, label] = self._metrics.deliveries.labels(
                kind=kind, result=label
            )
        counter.inc()
        if result.status == "delivered":
            latency_s = (finished - row.created_at).total_seconds()
            self._metrics.delivery_latency.observe(max(latency_s, 0.0))
            # At debug level: a line per webhook delivered was a seventh of a drain's CPU at INFO,
            # thousands a second; the console, the API and /metrics show what was delivered.
            if log.isEnabledFor(logging.DEBUG):
                log.debug("delivered", extra=_fields(row, result))
            return
        fields = _fields(row, result)
        if result.status == "pending":
            next_at = result.next_attempt_at.isoformat() if result.next_attempt_at else None
            log.warning(
                "delivery failed; will retry",
                extra={**fields, "error": result.error, "next_attempt_at": next_at},
            )
        else:
            # At error level: nothing more will be tried until someone redelivers it by hand.
            log.error("delivery dead", extra={**fields, "error": result.error})

    async def aclose(self, *, timeout_s: float = 30.0) -> None:
        """Stop claiming, hand back the rows not yet started, let the sends under way finish and
        be recorded, close the channels."""
        self._closed = True
        async with self._claiming:  # a claim under way queues its rows before they are handed back
            waiting = self._lanes.release_waiting()
        for held in waiting:
            held.finished.set_result(False)
        if waiting:
            await self._store.outbox.release(
                delivery_ids=[held.row.id for held in waiting], owner=self._owner
            )
        loop = asyncio.get_running_loop()
        ends = loop.time() + timeout_s
        if self._sends:
            _, late = await asyncio.wait(set(self._sends), timeout=timeout_s)
            if late:
                log.warning(
                    "deliveries still in flight at shutdown; their leases will expire",
                    extra={"count": len(late)},
                )
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        # The attempts just made get a second to be written even past the deadline: one not
        # written is sent again when its lease ends.
        try:
            async with asyncio.timeout_at(max(ends, loop.time() + 1.0)):
                await self._recorder.drain()
        except TimeoutError:
            log.warning(
                "delivery attempts still being written at shutdown; their leases will expire"
            )
            self._recorder.cancel()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CANCEL_WAIT_S):
                    await self._recorder.drain()
        await self._channels.aclose()


def _fields(row: ClaimedDelivery, result: AttemptResult) -> dict[str, Any]:
    """An attempt's log fields (no URLs: they may carry secrets)."""
    return {
        "delivery_id": row.id,
        "event_id": row.event_id,
        "watch_id": row.watch_id,
        "destination": row.destination,
        "attempt": row.attempts + 1,
        "status_code": result.status_code,
        "duration_ms": round(result.duration_ms, 1),
    }
