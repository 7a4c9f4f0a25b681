"""The event vocabulary (CONTRACT section 4): the types, the patterns that select them, and which
end a job or a watch. The API schema, the config checker and routing all derive from these lists."""

from __future__ import annotations

from bridge.events.snapshot import ITEM_FINAL, JOB_FINAL

EVENT_TYPES = (
    *(f"job.{s}" for s in ("queued", "processing", *sorted(JOB_FINAL))),
    *(f"item.{s}" for s in ("processing", *sorted(ITEM_FINAL), "updated")),
    "watch.expired",
    "watch.failed",
)

# An import's own events (CONTRACT section 7), numbered per import; the last four end it.
IMPORT_FINAL = ("completed", "partially_completed", "failed", "cancelled")
IMPORT_EVENT_TYPES = (
    "import.started",
    "import.progress",
    "import.stalled",
    "import.resumed",
    *(f"import.{s}" for s in IMPORT_FINAL),
)
ALL_EVENT_TYPES = (*EVENT_TYPES, *IMPORT_EVENT_TYPES)

# Events that end a job or its watch: a summary-mode email is sent for these only.
SUMMARY_EVENTS = frozenset({*(f"job.{s}" for s in JOB_FINAL), "watch.failed", "watch.expired"})
# An import's summary email is sent for these only.
IMPORT_SUMMARY_EVENTS = frozenset(f"import.{s}" for s in IMPORT_FINAL)

# What a route or a watch's `events` may name: everything, one family, or one type.
EVENT_PATTERNS = (
    "*",
    *dict.fromkeys(f"{t.split('.')[0]}.*" for t in ALL_EVENT_TYPES),
    *ALL_EVENT_TYPES,
)
_KNOWN_PATTERNS = frozenset(EVENT_PATTERNS)


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` selects no event the bridge emits, or None when it is a known pattern."""
    if pattern in _KNOWN_PATTERNS:
        return None
    return f"unknown event pattern {pattern!r} (use '*', 'job.*', 'item.failed', ...)"
