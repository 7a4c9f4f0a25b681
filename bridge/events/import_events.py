"""ImportEventPlanner: an import's new events, numbered and routed. Pure: no I/O, no clock.

Import events are one stream per import (`import:<id>`), ordered by their sequence, for the
import's own webhook and for every channel whose route matches them; a channel hears each one once
(its change key names the import and the sequence), however many replicas plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bridge.events.import_view import ImportRecord, import_event_payload
from bridge.events.rollup import Tally
from bridge.events.routing import WEBHOOK_URL, Router, WatchRoute
from bridge.ids import new_id as default_new_id


def import_stream(import_id: str) -> str:
    """The delivery stream of an import's events, and (with a job suffix) of its jobs' stories."""
    return f"import:{import_id}"


def import_of_stream(stream: str) -> str | None:
    """The import a delivery stream tells about, or None for a watch's or a lone job's stream."""
    if not stream.startswith("import:"):
        return None
    return stream[len("import:") :].split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Send:
    """One planned delivery of an import event."""

    destination: str
    stream: str
    position: int
    change_key: str | None


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """One import event to record, with where it goes."""

    id: str
    import_id: str
    sequence: int
    type: str
    payload: dict[str, object]
    created_at: datetime
    sends: tuple[Send, ...]


@dataclass(frozen=True, slots=True)
class ImportEventPlanner:
    """Numbers and routes an import's events; built once from the routes, used by every writer."""

    router: Router
    new_id: Callable[[str], str] = default_new_id

    def plan(
        self, record: ImportRecord, tally: Tally, types: Sequence[str], *, now: datetime
    ) -> tuple[ImportRecord, list[PlannedEvent]]:
        """The record with its new tally and sequence counter, and the events `types` make."""
        out: list[PlannedEvent] = []
        after = replace(record, tally=tally, updated_at=now)
        route = WatchRoute(
            record.client, record.account, record.webhook_url, record.events, import_id=record.id
        )
        stream = import_stream(record.id)
        for offset, event_type in enumerate(types, start=1):
            sequence = record.last_sequence + offset
            event_id = self.new_id("evt")
            payload = import_event_payload(
                event_type=event_type,
                event_id=event_id,
                sequence=sequence,
                record=after,
                now=now,
            )
            sends = tuple(
                Send(
                    destination,
                    stream,
                    sequence,
                    None if destination == WEBHOOK_URL else f"{stream}#{sequence}",
                )
                for destination in self.router.destinations(event_type, route)
            )
            out.append(PlannedEvent(event_id, record.id, sequence, event_type, payload, now, sends))
        return replace(after, last_sequence=record.last_sequence + len(types)), out
