"""What every outbound HTTP call shares: `USER_AGENT`, and `parse_retry_after` for the answers.

Polling and delivery both call out (and may not import each other), so the two rules live here once.
"""

from __future__ import annotations

import importlib.metadata
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def _version() -> str:
    try:
        return importlib.metadata.version("photo-bridge")
    except importlib.metadata.PackageNotFoundError:
        return "0"


USER_AGENT = f"photo-bridge/{_version()}"  # every request the bridge sends names itself
_SECONDS = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,9})?")


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Return Retry-After (delay-seconds or HTTP-date) as seconds from `now`; None if unreadable."""
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
