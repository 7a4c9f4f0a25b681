"""The events between two polls of one job (CONTRACT section 4), as a pure function."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bridge.events.snapshot import TRACKED_ITEM_FIELDS, ItemSnapshot, JobSnapshot

# An item's status before anyone reported it; seeing it first in this status is no news.
_INITIAL_ITEM_STATUS = "queued"


@dataclass(frozen=True, slots=True)
class Change:
    """One observed change: `job.<status>`, `item.<status>` or `item.updated`."""

    type: str
    previous_status: str | None
    item: ItemSnapshot | None


def carry_over(old: JobSnapshot | None, new: JobSnapshot) -> JobSnapshot:
    """Return `new` with every status it left out, and every item it dropped, kept from `old`.

    The stored snapshot must never forget what a poll saw: a missing status or a vanished item is
    a gap in the upstream answer, not a change.
    """
    if old is None:
        return new
    before = {item.id: item for item in old.items}
    items = tuple(_keep_status(before.get(item.id), item) for item in new.items)
    seen = {item.id for item in new.items}
    vanished = tuple(item for item in old.items if item.id not in seen)
    status = new.status if new.status is not None else old.status
    return replace(new, status=status, items=items + vanished)


def diff(old: JobSnapshot | None, new: JobSnapshot) -> list[Change]:
    """Return the changes from `old` (None before the first poll) to `new`, item events first."""
    base = old if old is not None else JobSnapshot.empty(new.id)
    now = carry_over(base, new)
    before = {item.id: item for item in base.items}
    changes = [
        change
        for item in now.items
        if (change := _item_change(before.get(item.id), item)) is not None
    ]
    if now.status is not None and now.status != base.status:
        changes.append(Change(type=f"job.{now.status}", previous_status=base.status, item=None))
    return changes


def _keep_status(before: ItemSnapshot | None, item: ItemSnapshot) -> ItemSnapshot:
    if item.status is not None or before is None:
        return item
    return replace(item, status=before.status)


def _item_change(before: ItemSnapshot | None, now: ItemSnapshot) -> Change | None:
    was = before.status if before is not None else None
    # `now` went through carry_over, so its status is None only when `was` is None too.
    first_seen_queued = was is None and now.status == _INITIAL_ITEM_STATUS
    if now.status != was and not first_seen_queued:
        return Change(type=f"item.{now.status}", previous_status=was, item=now)
    if before is not None and _tracked(before) != _tracked(now):
        return Change(type="item.updated", previous_status=was, item=now)
    return None


def _tracked(item: ItemSnapshot) -> tuple[object, ...]:
    return tuple(getattr(item, name) for name in TRACKED_ITEM_FIELDS)
