"""A receiver that keeps up is sent more at once; a slow or failing one never is.

Webhooks go to one receiver origin at most PER_DESTINATION at once at first; each send answered
2xx within `lanes.FAST_S` lets its lane send one more, up to PER_RECEIVER_FAST, and any other
outcome halves the lane's limit, never below PER_DESTINATION (`bridge.delivery.lanes`). Here the
deliverer runs as `serve` runs it (the scheduler calls `dispatch_due`, a freed slot nudges it,
webhooks go out through `open_http`'s pool) against real receivers on 127.0.0.1, each counting
the requests it is answering at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.background import Background
from bridge.clock import utcnow
from bridge.delivery import signing
from bridge.delivery.deliverer import PER_DESTINATION, PER_RECEIVER_FAST
from bridge.delivery.http import open_http
from bridge.delivery.lanes import FAST_S
from bridge.devtools.localserver import serving
from bridge.store import open_store
from tests.integration.delivery_support import deliverer_for, delivery_config, signed_by
from tests.integration.outbox_rows import add_events, add_watch

TICK_S = 1.0  # as `serve`'s DELIVER_TICK_S
WITHIN_S = 20.0  # what has not happened by then counts as never


@dataclass
class Receiver:
    """Verifies each webhook, works `delay_s`, answers `status`; counts requests in flight."""

    secret: str
    delay_s: float
    status: int = 204
    in_flight: int = 0
    peak: int = 0
    bad: int = 0
    attempts: Counter[str] = field(default_factory=Counter)  # webhook-id -> requests answered
    sequences: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    async def hook(self, request: Request) -> Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            body = await request.body()
            if not signed_by(self.secret, body, request.headers):
                self.bad += 1
                return Response(status_code=401)
            await asyncio.sleep(self.delay_s)  # the receiver's work: requests overlap
            data = json.loads(body)["data"]
            self.attempts[request.headers["webhook-id"]] += 1
            if 200 <= self.status < 300:
                self.sequences[data["watch_id"]].append(data["sequence"])
            return Response(status_code=self.status)
        finally:
            self.in_flight -= 1

    def answered(self) -> int:
        return sum(self.attempts.values())


@contextlib.asynccontextmanager
async def delivering(
    storage_url: str,
    receiver: Receiver,
    *,
    watches: int,
    events: int,
    timeout_s: float,
    retry_schedule_s: list[float],
) -> AsyncIterator[None]:
    """A backlog of `events` deliveries for each of `watches` watches, all to `receiver`, being
    delivered as `serve` delivers them for the duration of the block; closed after it (every
    send under way finished and recorded)."""
    settings = delivery_config(
        receiver.secret,
        timeout_s=timeout_s,
        retry_schedule_s=retry_schedule_s,
        api_key="aigen_test_concurrency",
    )
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    store = await open_store(storage_url)
    work = Background()
    try:
        async with serving(app) as server, open_http() as http:
            deliverer = deliverer_for(
                settings,
                store,
                http,
                on_free=lambda: work.nudge("deliver"),
                owner="concurrency",
                seed=5,
            )
            try:
                now = utcnow()
                for _ in range(watches):
                    watch = await add_watch(store, at=now, webhook_url=server.url + "/hook")
                    await add_events(store, watch, count=events, at=now)
                work.start({"deliver": (deliverer.dispatch_due, TICK_S)})
                yield
            finally:
                await work.stop()
                await deliverer.aclose(timeout_s=timeout_s + 5)
    finally:
        await store.close()


async def until(condition: Callable[[], bool], *, within_s: float = WITHIN_S) -> None:
    """Return once `condition()` holds; TimeoutError if it does not within `within_s`."""
    async with asyncio.timeout(within_s):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_fast_receiver_is_sent_more_at_once_up_to_its_limit(storage_url):
    watches, events = 60, 5
    receiver = Receiver(signing.new_secret(), delay_s=0.02)
    async with delivering(
        storage_url, receiver, watches=watches, events=events, timeout_s=5.0, retry_schedule_s=[0.2]
    ):
        await until(lambda: receiver.answered() >= watches * events)

    assert receiver.bad == 0
    assert receiver.in_flight == 0
    assert len(receiver.attempts) == watches * events  # every event arrived, verified
    assert set(receiver.attempts.values()) == {1}  # once: nothing failed, nothing was retried
    assert len(receiver.sequences) == watches
    for watch_id, sequences in receiver.sequences.items():
        assert sequences == list(range(1, events + 1)), watch_id  # each watch's in order
    # Its lane grew past the first limit while it kept up, and never past the fast limit.
    assert PER_DESTINATION < receiver.peak <= PER_RECEIVER_FAST, receiver.peak


async def test_a_slow_receiver_is_never_sent_more_than_its_share(storage_url):
    watches = 12  # three rounds of PER_DESTINATION
    receiver = Receiver(signing.new_secret(), delay_s=FAST_S + 0.2)  # 2xx, but slowly
    async with delivering(
        storage_url, receiver, watches=watches, events=1, timeout_s=5.0, retry_schedule_s=[0.2]
    ):
        await until(lambda: receiver.answered() >= watches)

    assert receiver.bad == 0
    assert len(receiver.sequences) == watches  # every one delivered (2xx), none retried
    assert set(receiver.attempts.values()) == {1}
    # Each answer was 2xx, none fast: the lane stayed at its share, which it used.
    assert receiver.peak == PER_DESTINATION, receiver.peak


async def test_a_failing_receiver_is_never_sent_more_than_its_share(storage_url):
    watches, schedule = 20, [0.05, 0.05]  # each tried 3 times, then dead
    receiver = Receiver(signing.new_secret(), delay_s=0.02, status=500)  # fails fast
    async with delivering(
        storage_url, receiver, watches=watches, events=1, timeout_s=5.0, retry_schedule_s=schedule
    ):
        await until(lambda: receiver.answered() >= watches * (1 + len(schedule)))

    assert receiver.bad == 0
    assert not receiver.sequences  # nothing was answered 2xx
    assert len(receiver.attempts) == watches
    assert set(receiver.attempts.values()) == {1 + len(schedule)}  # the whole schedule, no more
    # Every answer was a quick failure: the lane never grew, though five times its share waited.
    assert receiver.peak == PER_DESTINATION, receiver.peak
