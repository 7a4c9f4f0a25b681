"""build_message(row, view): a claimed delivery as its channel sees it; import_views(...) and
claimed_views(...): the imports a claimed batch tells about; deferred_result(...): a send a
channel put off."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from bridge.delivery.channels import Message, SendResult
from bridge.events.import_events import import_of_stream
from bridge.events.import_view import ImportRecord, import_view
from bridge.store import Store
from bridge.store.outbox import AttemptResult, ClaimedDelivery

log = logging.getLogger(__name__)


class ImportReader(Protocol):
    """Reads stored imports by id (`bridge.store.imports.Imports`)."""

    async def get_many(self, ids: Sequence[str]) -> dict[str, ImportRecord]: ...


async def import_views(
    imports: ImportReader, claimed: Sequence[ClaimedDelivery], *, now: datetime
) -> dict[str, Mapping[str, Any]]:
    """The Import view (CONTRACT section 7, rate and ETA for `now`) each claimed row tells about,
    by delivery id; one read per batch. Read after the claim, so after each row's event was
    committed with the import's roll-up: the view shows at least what the event changed."""
    wanted = {row.id: import_of_stream(row.stream) for row in claimed}
    ids = sorted({i for i in wanted.values() if i is not None})
    if not ids:
        return {}
    records = await imports.get_many(ids)
    views = {i: import_view(record, now=now) for i, record in records.items()}
    return {d: views[i] for d, i in wanted.items() if i is not None and i in views}


async def claimed_views(
    store: Store, claimed: Sequence[ClaimedDelivery], *, now: datetime, owner: str
) -> dict[str, Mapping[str, Any]] | None:
    """`import_views` of a claim; None when they could not be read: the rows are then handed
    back (or their leases expire) and claimed again."""
    try:
        return await import_views(store.imports, claimed, now=now)
    except Exception:
        log.exception("could not read imports; their deliveries are claimed again later")
    with contextlib.suppress(Exception):
        await store.outbox.release(delivery_ids=[row.id for row in claimed], owner=owner)
    return None


def deferred_result(
    row: ClaimedDelivery, sent: SendResult, *, attempted_at: datetime, duration_ms: float
) -> AttemptResult:
    """A send the channel put off: pending until then, no attempt counted (nothing failed)."""
    log.debug(
        "delivery put off",
        extra={"delivery_id": row.id, "destination": row.destination, "until": sent.defer_until},
    )
    return AttemptResult(
        delivery_id=row.id,
        attempted_at=attempted_at,
        duration_ms=duration_ms,
        status="pending",
        next_attempt_at=sent.defer_until,
        response_excerpt=sent.response_excerpt,
        counted=False,
    )


def build_message(row: ClaimedDelivery, view: Mapping[str, Any] | None = None) -> Message:
    """The claimed delivery as its channel sees it, with its import's view when it has one."""
    return Message(
        delivery_id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        timestamp=row.event_created_at,
        payload=row.payload,
        job=row.job,
        attempt=row.attempts + 1,
        import_id=import_of_stream(row.stream),
        import_view=view,
    )
