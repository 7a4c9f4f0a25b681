"""utcnow(): the one default clock; everything that reads time takes a `Clock` so tests inject one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)
