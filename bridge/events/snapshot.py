"""Typed, immutable views of an upstream job as one poll saw it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JOB_FINAL = frozenset({"completed", "partially_completed", "failed", "cancelled"})
ITEM_FINAL = frozenset({"completed", "failed", "cancelled"})

# Item fields whose change without a status change is an `item.updated` event (CONTRACT section 4).
TRACKED_ITEM_FIELDS = ("result_url", "thumbnail_url", "error_code", "error_message", "credits_used")


@dataclass(frozen=True, slots=True)
class ItemSnapshot:
    """One image of a job: its status and the fields the bridge reports on."""

    id: str
    status: str | None
    external_id: str | None = None
    result_url: str | None = None
    thumbnail_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    credits_used: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the item as the event payload shows it."""
        return {
            "id": self.id,
            "external_id": self.external_id,
            "status": self.status,
            "result_url": self.result_url,
            "thumbnail_url": self.thumbnail_url,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "credits_used": self.credits_used,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemSnapshot:
        """Rebuild an item stored with `to_dict`."""
        return cls(**{key: data.get(key) for key in cls.__slots__})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """A job as one poll saw it; `status` is None when the upstream left it out."""

    id: str
    status: str | None
    total_items: int = 0
    completed_items: int = 0
    failed_items: int = 0
    credits_used: int = 0
    items: tuple[ItemSnapshot, ...] = field(default_factory=tuple)

    @property
    def is_final(self) -> bool:
        """True when the job and every item are in final states, so polling can stop."""
        return self.status in JOB_FINAL and all(i.status in ITEM_FINAL for i in self.items)

    def summary(self) -> dict[str, Any]:
        """Return the job counters as events and the watches API show them."""
        return {
            "status": self.status,
            "total_items": self.total_items,
            "completed_items": self.completed_items,
            "failed_items": self.failed_items,
            "credits_used": self.credits_used,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form for storage."""
        return {**self.summary(), "id": self.id, "items": [i.to_dict() for i in self.items]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSnapshot:
        """Rebuild a job stored with `to_dict`."""
        return cls(
            id=data["id"],
            status=data.get("status"),
            total_items=data.get("total_items") or 0,
            completed_items=data.get("completed_items") or 0,
            failed_items=data.get("failed_items") or 0,
            credits_used=data.get("credits_used") or 0,
            items=tuple(ItemSnapshot.from_dict(i) for i in data.get("items") or ()),
        )

    @classmethod
    def empty(cls, job_id: str) -> JobSnapshot:
        """The job before the first poll: no status, no items (CONTRACT section 4)."""
        return cls(id=job_id, status=None)
