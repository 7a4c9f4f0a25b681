"""change_key(...): the identity of one observed change of a job, the same whichever watch saw it.

A configured channel hears each change of a job once (CONTRACT section 6), however many watches the
job has: two watches that observe the same change (the older one between two polls, a newer one on
its first poll, compared with an empty job) produce events with different ids, sequences and even
types, so the store keeps one delivery per (channel, key). A change is named by what changed (an
item, or the job's status) and how many times it has changed status so far (an item that fails, is
retried upstream and fails again with the same error is two changes), and an `item.updated` also by
how many updates of the item came before it. A late watch catching up tells each item's latest
status change, never an update: the older watch told that status change already, whatever updates
followed it and whether or not a channel took them. Pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from bridge.events.diff import Change

# Where the stored job snapshot keeps its change counts: {subject: changes observed so far}.
OBSERVED = "observed_changes"
JOB = "job"


UPDATED = "item.updated"


def subject(change: Change) -> str:
    """What a change is about: `item:<id>` or the job's status."""
    return f"item:{change.item.id}" if change.item is not None else JOB


def _counter(change: Change) -> str:
    name = subject(change)
    return f"{name}/updated" if change.type == UPDATED else name


def count_changes(observed: Mapping[str, int], changes: Iterable[Change]) -> dict[str, int]:
    """The counts after one poll's job-level `changes` (those since the previous poll)."""
    counts = dict(observed)
    for change in changes:
        counts[_counter(change)] = counts.get(_counter(change), 0) + 1
    return counts


def change_key(
    *,
    account: str,
    job_id: str,
    event_type: str,
    change: Change | None,
    observed: Mapping[str, int],
) -> str:
    """A 64-character key naming the change: its job, subject and how many changes came before."""
    state: list[object]
    if change is None:
        state = [event_type]  # watch.expired / watch.failed: once per job
    else:
        state = [subject(change), observed.get(subject(change), 0)]
        if change.type == UPDATED:
            state += [UPDATED, observed.get(_counter(change), 0)]
    text = json.dumps([account, job_id, *state], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
