"""Lanes: the deliveries a replica has claimed, queued per destination, so that one slow receiver
fills its own lane and nobody else's.

A destination is a configured channel's name, or for a watch's own webhook its URL's origin
(`scheme://host[:port]` exactly as written): the server a hanging receiver ties up; the outbox's
claim matches origins the same way (`bridge.store.busy`). A lane sends at most
`per_destination` rows at once and holds at most `depth` (sending or waiting); the replica sends
at most `sending` and holds at most `held` in all. A receiver's lane (an origin's, not a
configured channel's) may send more at once, up to `grow_to`, while its receiver keeps up: one
more for each send answered 2xx within `FAST_S`, half as many (never fewer than
`per_destination`) after any other outcome (an error, a timeout, a slow answer). With a handful
of sends in flight, a fast receiver's answers wait on the event loop more than on the receiver;
a slow or failing one is never sent more than `per_destination` at once for long. A row stops
counting as a send when its send ends, and stops being held when its result is written. A lane is
claimed for again once no more than `refill_at` of its rows still wait (`busy` names the others):
a busy receiver's rows are read in batches, not one claim per send, and the next batch is read
while the last still goes out.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.clock import Clock
from bridge.events.routing import WEBHOOK_URL
from bridge.store.busy import Busy
from bridge.store.outbox import ClaimedDelivery, DueHead

Destination = tuple[str, str]  # ("channel", name) or ("origin", "scheme://host[:port]")
FAST_S = 1.0  # a receiver's 2xx within this lets its lane send one more at once


@functools.lru_cache(maxsize=4096)
def origin(url: str) -> str:
    """The URL up to its path, query or fragment: `scheme://host[:port]` as written (asked for each
    claimed row, of the same few URLs)."""
    scheme, sep, rest = url.partition("://")
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    return scheme + sep + rest[: min(ends, default=len(rest))]


def destination_of(row: ClaimedDelivery | DueHead) -> Destination:
    """Where a delivery goes, as far as concurrency is concerned."""
    if row.destination == WEBHOOK_URL and row.webhook_url:
        return ("origin", origin(row.webhook_url))
    return ("channel", row.destination)


@dataclass(eq=False)
class Held:
    """A claimed row in its lane: `deadline` (loop time) is when its send must have ended."""

    row: ClaimedDelivery
    clock: Clock
    deadline: float
    finished: asyncio.Future[bool]  # True once an attempt is recorded, False if none was
    import_view: Mapping[str, Any] | None = None  # its import as read right after the claim


@dataclass
class _Lane:
    limit: int  # sends at once now: per_destination, or more for a receiver that keeps up
    waiting: deque[Held] = field(default_factory=deque)
    sending: int = 0
    recording: int = 0  # sent, the result not yet written: held, but no longer a send
    prompted: bool = False  # a claim was asked for since rows last came in

    def __len__(self) -> int:
        return len(self.waiting) + self.sending + self.recording


class Lanes:
    """Claimed rows per destination, with the limits above."""

    def __init__(
        self,
        *,
        sending: int,
        per_destination: int,
        held: int,
        depth: int,
        refill_at: int = 0,
        grow_to: int | None = None,
    ) -> None:
        if not 1 <= per_destination <= min(sending, depth) or max(sending, depth) > held:
            raise ValueError("lane limits must be 1 <= per_destination <= sending, depth <= held")
        if not 0 <= refill_at < depth:
            raise ValueError("a lane's refill mark must be 0 <= refill_at < depth")
        grow_to = per_destination if grow_to is None else grow_to
        if not per_destination <= grow_to <= min(sending, depth):
            raise ValueError("a lane's growth must be per_destination <= grow_to <= sending, depth")
        self.sending_limit = sending
        self.per_destination = per_destination
        self.grow_to = grow_to
        self.held_limit = held
        self.depth = depth
        self.refill_at = refill_at
        self._lanes: dict[Destination, _Lane] = {}
        self._ids: dict[str, Destination] = {}
        self._sent: set[str] = set()
        self._sending = 0

    def __contains__(self, delivery_id: str) -> bool:
        return delivery_id in self._ids

    def room(self) -> int:
        """How many more rows a claim may take."""
        return self.held_limit - len(self._ids)

    def held(self) -> int:
        """Rows held now (waiting, sending or being recorded)."""
        return len(self._ids)

    def sending(self) -> int:
        """Rows being sent now."""
        return self._sending

    def claimable(self, where: Destination) -> bool:
        """Whether a claim should read rows for `where`: at most `refill_at` rows of its lane are
        still waiting (so the next batch is read while those go out, not after)."""
        lane = self._lanes.get(where)
        return lane is None or len(lane.waiting) <= self.refill_at

    def wants_claim(self, where: Destination) -> bool:
        """Whether a send just over in `where` should prompt a claim: its lane has nothing left
        waiting, or is down to its refill mark and has not prompted one since rows last came in
        (a lane draining with nothing more due does not prompt a claim per send)."""
        lane = self._lanes.get(where)
        if lane is None or not lane.waiting:
            return True
        if len(lane.waiting) > self.refill_at or lane.prompted:
            return False
        lane.prompted = True
        return True

    def busy(self) -> Busy:
        """The destinations a claim need not read (more than `refill_at` of their rows wait)."""
        full = [where for where in self._lanes if not self.claimable(where)]
        return Busy(
            channels=frozenset(name for kind, name in full if kind == "channel"),
            origins=frozenset(name for kind, name in full if kind == "origin"),
        )

    def admission(self, *, limit: int) -> Callable[[DueHead], bool]:
        """A predicate for one claim: yes to at most `limit` rows, each fitting in its lane."""
        room = min(limit, self.room())
        taken: Counter[Destination] = Counter()

        def admit(row: DueHead) -> bool:
            nonlocal room
            where = destination_of(row)
            lane = self._lanes.get(where)
            if room <= 0 or row.id in self._ids:
                return False  # full, or still held here although its lease has run out
            if (len(lane) if lane else 0) + taken[where] >= self.depth:
                return False
            room -= 1
            taken[where] += 1
            return True

        return admit

    def hold(self, held: Held) -> None:
        """Queue a claimed row in its lane."""
        where = destination_of(held.row)
        self._ids[held.row.id] = where
        lane = self._lanes.get(where)
        if lane is None:
            lane = self._lanes[where] = _Lane(limit=self.per_destination)
        lane.waiting.append(held)
        lane.prompted = False

    def take_ready(self) -> list[Held]:
        """The waiting rows that may start now, lanes taking turns; they count as sending."""
        started: list[Held] = []
        progress = True
        while progress and self._sending < self.sending_limit:
            progress = False
            for where, lane in list(self._lanes.items()):
                if self._sending >= self.sending_limit:
                    break
                if lane.waiting and lane.sending < lane.limit:
                    started.append(lane.waiting.popleft())
                    lane.sending += 1
                    self._sending += 1
                    progress = True
                    self._lanes[where] = self._lanes.pop(where)  # its turn is over
        return started

    def sent(self, delivery_id: str, *, fast: bool = False) -> None:
        """A row's send is over (`fast`: answered 2xx within FAST_S): the lane may start another
        while its result is written, and a receiver's lane sends more or fewer at once."""
        where = self._ids.get(delivery_id)
        if where is None or delivery_id in self._sent:
            return
        self._sent.add(delivery_id)
        lane = self._lanes[where]
        lane.sending -= 1
        lane.recording += 1
        self._sending -= 1
        if where[0] == "origin":
            grown = lane.limit + 1 if fast else lane.limit // 2
            lane.limit = max(self.per_destination, min(self.grow_to, grown))

    def limit(self, where: Destination) -> int:
        """How many rows `where`'s lane may send at once now."""
        lane = self._lanes.get(where)
        return lane.limit if lane is not None else self.per_destination

    def finish(self, delivery_id: str) -> Destination | None:
        """A row taken by `take_ready` is done (recorded, or given up): free its place."""
        where = self._ids.pop(delivery_id, None)
        if where is None:
            return None
        lane = self._lanes[where]
        if delivery_id in self._sent:
            self._sent.discard(delivery_id)
            lane.recording -= 1
        else:
            lane.sending -= 1
            self._sending -= 1
        if not lane:
            del self._lanes[where]
        return where

    def release_waiting(self) -> list[Held]:
        """Take every row that has not started out of its lane (shutting down)."""
        released = [held for lane in self._lanes.values() for held in lane.waiting]
        for held in released:
            self._ids.pop(held.row.id, None)
        for where, lane in list(self._lanes.items()):
            lane.waiting.clear()
            if not lane:
                del self._lanes[where]
        return released
