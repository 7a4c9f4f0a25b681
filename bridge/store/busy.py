"""Busy / not_busy: the destinations an outbox claim passes over, and the SQL that leaves them out.

The deliverer names the receivers (webhook URL origins) and channels it already has all the rows it
may hold for; their due rows must not fill a claim and starve everyone else's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, not_, true

from bridge.store.tables import deliveries, imports, watches

D = deliveries
WATCH_WEBHOOK = "webhook_url"  # the destination of a watch's own webhook (events.routing's name)
_ORIGIN_ENDS = ("", "/", "?", "#")  # what may follow a URL's scheme://host[:port]


@dataclass(frozen=True, slots=True)
class Busy:
    """Destinations a claim passes over because the caller sends to them all it may already."""

    channels: frozenset[str] = frozenset()  # destination names from the config
    origins: frozenset[str] = frozenset()  # watch webhook URLs' "scheme://host[:port]" as written


NOTHING_BUSY = Busy()


def not_busy(busy: Busy) -> ColumnElement[bool]:
    """Leave out rows for busy destinations, so they cannot fill the claim and starve the rest."""
    clauses: list[ColumnElement[bool]] = []
    if busy.channels:
        clauses.append(D.c.destination.not_in(sorted(busy.channels)))
    url = func.coalesce(watches.c.webhook_url, imports.c.webhook_url)  # an import's own events
    for origin in sorted(busy.origins):
        # The URL starts with the origin and the origin ends there (no "http://h:80" for "http://h:8").
        on_origin = and_(
            D.c.destination == WATCH_WEBHOOK,
            func.substr(url, 1, len(origin)) == origin,
            func.substr(url, len(origin) + 1, 1).in_(_ORIGIN_ENDS),
        )
        clauses.append(not_(on_origin))
    return and_(true(), *clauses)
