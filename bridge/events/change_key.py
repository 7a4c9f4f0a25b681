"""change_key(...): the identity of one observed change of a job, the same whichever watch saw it.

A configured channel hears each change of a job once (CONTRACT section 6), however many watches the
job has: two watches that observe the same change (the older one between two polls, a newer one on
its first poll, compared with an empty job) produce events with different ids and sequences but the
same key, so the store keeps one delivery per (channel, key). Pure.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bridge.events.snapshot import TRACKED_ITEM_FIELDS, ItemSnapshot


def change_key(
    *, account: str, job_id: str, event_type: str, item: ItemSnapshot | None, job_status: str | None
) -> str:
    """A 64-character key naming the change by its job, type, item and the state it arrived at."""
    state: list[Any]
    if item is not None:
        state = [item.id, item.status, *(getattr(item, name) for name in TRACKED_ITEM_FIELDS)]
    elif event_type.startswith("job."):
        state = [job_status]
    else:
        state = []  # watch.expired / watch.failed: once per job
    text = json.dumps([account, job_id, event_type, state], default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
