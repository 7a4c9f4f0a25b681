"""InFlight: the sends this replica has under way, counted per destination, so one slow receiver
fills only its own few slots (`per_destination`) and never the whole replica's (`total`).

A destination is a configured channel's name, or for a watch's own webhook its URL's origin
(`scheme://host[:port]` exactly as written): the server a hanging receiver ties up. The outbox's
claim matches origins the same way (`bridge.store.outbox.Busy`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from bridge.events.routing import WEBHOOK_URL
from bridge.store.outbox import Busy, ClaimedDelivery

Destination = tuple[str, str]  # ("channel", name) or ("origin", "scheme://host[:port]")


def origin(url: str) -> str:
    """The URL up to its path, query or fragment: `scheme://host[:port]` as written."""
    scheme, sep, rest = url.partition("://")
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    return scheme + sep + rest[: min(ends, default=len(rest))]


def destination_of(row: ClaimedDelivery) -> Destination:
    """Where a delivery goes, as far as concurrency is concerned."""
    if row.destination == WEBHOOK_URL and row.webhook_url:
        return ("origin", origin(row.webhook_url))
    return ("channel", row.destination)


class InFlight:
    """Delivery ids being sent now, with at most `total` in all and `per_destination` each."""

    def __init__(self, *, total: int, per_destination: int) -> None:
        if total < 1 or per_destination < 1:
            raise ValueError("send limits must be at least 1")
        self.total = total
        self.per_destination = per_destination
        self._ids: dict[str, Destination] = {}
        self._counts: Counter[Destination] = Counter()

    def __contains__(self, delivery_id: str) -> bool:
        return delivery_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def free(self) -> int:
        """How many more sends may start now."""
        return self.total - len(self._ids)

    def busy(self) -> Busy:
        """The destinations that have all the sends they may have: a claim need not read them."""
        full = [d for d, n in self._counts.items() if n >= self.per_destination]
        return Busy(
            channels=frozenset(name for kind, name in full if kind == "channel"),
            origins=frozenset(name for kind, name in full if kind == "origin"),
        )

    def admission(self, *, limit: int) -> Callable[[ClaimedDelivery], bool]:
        """A predicate for one claim: yes to at most `limit` rows that fit beside those in flight."""
        room = min(limit, self.free())
        taken: Counter[Destination] = Counter()

        def admit(row: ClaimedDelivery) -> bool:
            nonlocal room
            where = destination_of(row)
            if room <= 0 or row.id in self._ids:
                return False  # full, or still being sent here although its lease has run out
            if self._counts[where] + taken[where] >= self.per_destination:
                return False
            room -= 1
            taken[where] += 1
            return True

        return admit

    def add(self, row: ClaimedDelivery) -> None:
        """Count a claimed delivery as being sent."""
        where = destination_of(row)
        self._ids[row.id] = where
        self._counts[where] += 1

    def discard(self, delivery_id: str) -> None:
        """The send is over (recorded or abandoned): its slot is free."""
        where = self._ids.pop(delivery_id, None)
        if where is None:
            return
        self._counts[where] -= 1
        if self._counts[where] <= 0:
            del self._counts[where]
