"""parse_retry_after(value, now): a Retry-After header (seconds or HTTP-date) as seconds to wait.

Both the upstream's 429s and webhook receivers' answers carry it; one reading serves both.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

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
