"""The Jinja filters templates use: status labels and emoji, progress bars, clipping, escaping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jinja2

_STATUS_LABELS = {
    None: "Unknown",
    "open": "Open",
    "running": "Running",
    "queued": "Queued",
    "processing": "Processing",
    "completed": "Completed",
    "partially_completed": "Partially completed",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
_STATUS_EMOJI = {
    "open": ":inbox_tray:",
    "running": ":gear:",
    "queued": ":hourglass_flowing_sand:",
    "processing": ":gear:",
    "completed": ":white_check_mark:",
    "partially_completed": ":warning:",
    "failed": ":x:",
    "cancelled": ":no_entry_sign:",
}


def status_label(status: str | None) -> str:
    """'partially_completed' -> 'Partially completed'; new upstream values stay readable."""
    if status in _STATUS_LABELS:
        return _STATUS_LABELS[status]
    return str(status).replace("_", " ").capitalize()


def status_emoji(status: str | None) -> str:
    """A Slack emoji code for a status."""
    return _STATUS_EMOJI.get(status or "", ":grey_question:")


def progress_bar(percent: int | float, width: int = 20) -> str:
    """A bar of block characters, e.g. '██████░░░░' for 60 out of 100."""
    filled = max(0, min(width, round(width * float(percent) / 100)))
    return "█" * filled + "░" * (width - filled)


def clip(value: Any, limit: int) -> str:
    """Cut text to at most `limit` characters, marking the cut with an ellipsis."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def short_id(value: Any) -> str:
    """The first 8 characters of an id, as people quote job ids."""
    return str(value or "")[:8]


def mrkdwn(value: Any) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def utc_time(value: Any) -> str:
    """'2026-11-28T15:04:05Z' -> '2026-11-28 15:04 UTC'; '' for nothing, anything else as given."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        return str(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def to_json(value: Any) -> str:
    """JSON for templates that render JSON, keeping non-ASCII characters readable."""
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        return str(value)  # StrictUndefined raises here, naming what was undefined
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def http_url(value: Any) -> str:
    """The value if it is an http(s) URL, else '' (never a javascript: link in an email)."""
    text = "" if value is None else str(value).strip()
    return text if text.lower().startswith(("http://", "https://")) else ""


FILTERS = {
    "status_label": status_label,
    "status_emoji": status_emoji,
    "progress_bar": progress_bar,
    "clip": clip,
    "short_id": short_id,
    "mrkdwn": mrkdwn,
    "json": to_json,
    "http_url": http_url,
    "utc_time": utc_time,
}
