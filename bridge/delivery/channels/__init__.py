"""Destinations of events: one class per service, each with one async `send()`.

A channel makes exactly one attempt and reports what happened; whether to retry is decided once,
in `bridge.delivery.deliverer`, from the `SendError` it raises.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bridge.store.imports import FailureRecord


@dataclass(frozen=True, slots=True)
class Message:
    """One event on its way to one destination."""

    delivery_id: str
    event_id: str
    event_type: str
    timestamp: datetime  # when the event was recorded; aware UTC
    payload: Mapping[
        str, Any
    ]  # the event exactly as CONTRACT section 4: {"type", "timestamp", "data"}
    job: (
        Mapping[str, Any] | None
    )  # the latest stored job with all its items (JobSnapshot.to_dict())
    attempt: int = 1  # 1 on the first try
    # Set when the event is told inside an import's story (its own events, and with a route's
    # `group_by: import` its jobs' events in Slack and email): the import's id.
    import_id: str | None = None
    # The import as it stood when the delivery was claimed (`bridge.events.import_view`), read after
    # the event was committed; None outside imports or when the import is no longer stored.
    import_view: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the destination answered to a successful send.

    `defer_until` (aware UTC) says the send was put off, not failed: nothing was attempted that
    counts, and the delivery comes back at that time (a Slack import message between two edits).
    """

    status_code: int | None = None
    response_excerpt: str | None = None
    defer_until: datetime | None = None


class SendError(Exception):
    """One attempt failed; `permanent` asks delivery not to try again (e.g. HTTP 410)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after_s: float | None = None,
        response_excerpt: str | None = None,
        permanent: bool = False,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        self.response_excerpt = response_excerpt
        self.permanent = permanent


class Channel(Protocol):
    """A destination: sends one message once, raising SendError when it did not arrive.

    A channel whose every send ends within the delivery timeout says so with a class attribute
    `ends_within_timeout = True`; the deliverer then sets no timer of its own around it.
    """

    async def send(self, message: Message) -> SendResult: ...


class StateStore(Protocol):
    """Durable small state a channel keeps across restarts (e.g. a Slack message's `ts`)."""

    async def get_state(self, key: str) -> dict[str, Any] | None: ...

    async def put_state(self, key: str, value: dict[str, Any]) -> None: ...

    async def claim_state(self, key: str, value: dict[str, Any]) -> dict[str, Any] | None:
        """Store `value` only if `key` holds nothing; None when stored, else what `key` holds.

        A compare-and-set every replica sees: of two sends racing to open a job's Slack message or
        email thread, one wins.
        """
        ...


class ImportFailures(Protocol):
    """An import's failed images, in the order they were found (`bridge.store.imports.Imports`)."""

    async def failures(
        self, *, import_id: str, limit: int, after: int | None = None
    ) -> list[FailureRecord]: ...

    def iter_failures(
        self, *, import_id: str, batch: int = 500
    ) -> AsyncIterator[list[FailureRecord]]: ...
