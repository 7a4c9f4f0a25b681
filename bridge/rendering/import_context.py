"""import_context(...): the names the import templates see (Slack's import message, its thread
replies, the import's emails), built from the Import view of CONTRACT section 7."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bridge.events.vocabulary import IMPORT_FINAL

CONSOLE_PATH = "/console/imports/"


def import_context(
    *,
    view: Mapping[str, Any],
    payload: Mapping[str, Any],
    public_url: str | None,
    failures: Sequence[Mapping[str, Any]] = (),
    more: int = 0,
) -> dict[str, Any]:
    """The import as it stands, the event that brought the send, and (for a thread reply or a
    summary) the failed images to list with how many more were left out."""
    images: Mapping[str, Any] = view.get("images") or {}
    jobs: Mapping[str, Any] = view.get("jobs") or {}
    total = int(images.get("total") or 0)
    finished = int(images.get("completed") or 0) + int(images.get("failed") or 0)
    bridge_url = (public_url or "").rstrip("/")
    return {
        "import": view,
        "event": payload,
        "type": payload.get("type", ""),
        "timestamp": payload.get("timestamp", ""),
        "data": payload.get("data") or {},
        "percent": min(100, (100 * finished) // total) if total else 0,
        "jobs_done": int(jobs.get("total") or 0) - int(jobs.get("active") or 0),
        "final": view.get("status") in IMPORT_FINAL,
        "failures": [dict(f) for f in failures],
        "more": more,
        "bridge_url": bridge_url,
        "console_url": f"{bridge_url}{CONSOLE_PATH}{view.get('id', '')}" if bridge_url else "",
    }
