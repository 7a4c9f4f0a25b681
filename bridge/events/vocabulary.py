"""The event types the bridge emits (CONTRACT section 4), and which of them end a job or a watch."""

from __future__ import annotations

from bridge.events.snapshot import ITEM_FINAL, JOB_FINAL

EVENT_TYPES = (
    *(f"job.{s}" for s in ("queued", "processing", *sorted(JOB_FINAL))),
    *(f"item.{s}" for s in ("processing", *sorted(ITEM_FINAL), "updated")),
    "watch.expired",
    "watch.failed",
)

# Events that end a job or its watch: a summary-mode email is sent for these only.
SUMMARY_EVENTS = frozenset({*(f"job.{s}" for s in JOB_FINAL), "watch.failed", "watch.expired"})
