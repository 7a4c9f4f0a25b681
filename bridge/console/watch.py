"""GET /console/watches/{watch_id}: a job as one watch sees it — its items with thumbnails, the
event timeline, and every delivery with its attempts."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from bridge.console.context import console_of
from bridge.console.page import not_found, operator_of, render
from bridge.events.snapshot import JobSnapshot

WATCH_ID = re.compile(r"wat_[0-9a-f]{32}")
DELIVERIES_SHOWN = 200  # the newest; a job rarely makes more than a few dozen


async def show_watch(request: Request) -> Response:
    """The job page of one watch."""
    operator_of(request)
    console = console_of(request)
    watch_id = request.path_params["watch_id"]
    store = console.store
    record = await store.watches.get(watch_id=watch_id) if WATCH_ID.fullmatch(watch_id) else None
    if record is None:
        return not_found(request, "watch")
    job = JobSnapshot.from_dict(record.job) if record.job else None
    events = await store.watches.events(watch_id=record.id)
    deliveries = (await store.watches.deliveries(watch_id=record.id))[-DELIVERIES_SHOWN:]
    attempts = await store.outbox.attempts_of([d.id for d in deliveries if d.attempts])
    return render(
        request,
        "watch.html.j2",
        title=f"Job {record.job_id}",
        watch=record,
        job=job,
        events=events,
        deliveries=deliveries,
        attempts=attempts,
    )
