"""What a configured channel hears of one job across polls and watches, planned by plan_poll.

The store keeps one delivery per (destination, change key) (an INSERT ... ON CONFLICT DO NOTHING);
`Story` plays that part, so these tests see exactly the channel deliveries that would be stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from random import Random

from bridge.config import parse_config
from bridge.events.routing import Router
from bridge.events.snapshot import ItemSnapshot, JobSnapshot
from bridge.polling.outcomes import Ok
from bridge.polling.planning import PlanContext, plan_poll
from bridge.store.records import WatchRecord
from bridge.store.rows import JobRow
from tests.clock import T0

JOB_ID = "6f1c2f9e-0000-4000-8000-000000000001"
CONFIG = parse_config(
    """
channels:
  erp: {type: webhook, url: "https://erp.example.com/hooks", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
  done: {type: webhook, url: "https://done.example.com/hooks", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
routes:
  - {events: ["*"], channels: [erp]}
  - {events: ["item.completed"], channels: [done]}
""",
    env={},
)


def _watch(name: str, minutes: int) -> WatchRecord:
    at = T0 + timedelta(minutes=minutes)
    return WatchRecord(
        name, "shop", "main", JOB_ID, "active", None, ("*",), {}, at, at,
        at + timedelta(hours=48), 0, None, None, None, None, None, None,
    )  # fmt: skip


@dataclass
class Story:
    """One job polled again and again; `heard` is what the channel `erp` gets, in order."""

    watches: list[WatchRecord] = field(default_factory=list)
    job: JobRow = field(
        default_factory=lambda: JobRow(
            None, None, False, T0, 15.0, 0, None, None, 0, None, 0, 0, "main", JOB_ID
        )
    )
    keys: set[str] = field(default_factory=set)
    heard: list[str] = field(default_factory=list)
    channel: str = "erp"
    polls: int = 0
    changed: list[str] = field(default_factory=list)  # the watches the last poll wrote

    def poll(self, status: str, *items: ItemSnapshot) -> None:
        self.polls += 1
        now = T0 + timedelta(minutes=10 * self.polls)
        ctx = PlanContext(
            polling=CONFIG.polling, router=Router.from_config(CONFIG), now=now, rng=Random(0)
        )
        snapshot = JobSnapshot(id=JOB_ID, status=status, total_items=len(items), items=items)
        write = plan_poll(self.job, self.watches, Ok(snapshot=snapshot, rate_limit=None), ctx)
        assert write.job is not None
        self.job = JobRow(**{**_fields(write.job), "account": "main", "job_id": JOB_ID})
        types = {e.id: e.type for e in write.events}
        for d in write.deliveries:
            if d.destination == self.channel and d.change_key not in self.keys:
                self.keys.add(d.change_key or "")
                self.heard.append(types[d.event_id])
        by_id = {c.id: c for c in write.watches}
        self.changed = sorted(by_id)
        self.watches = [  # a watch the poll left as it was is not in its changes
            replace(w, last_sequence=c.last_sequence, first_polled_at=c.first_polled_at)
            if (c := by_id.get(w.id)) is not None
            else w
            for w in self.watches
        ]


def _fields(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def _item(status: str, **fields: object) -> ItemSnapshot:
    return ItemSnapshot(id="item-1", status=status, external_id="sku-1", **fields)  # type: ignore[arg-type]


def test_an_item_that_fails_again_after_an_upstream_retry_is_heard_twice():
    failed = _item("failed", error_code="timeout", error_message="render timed out")
    story = Story(watches=[_watch("w1", 0)])
    story.poll("processing", _item("processing"))
    story.poll("processing", failed)
    story.poll("processing", _item("processing"))
    story.poll("processing", failed)
    assert story.heard == [
        "item.processing",
        "job.processing",
        "item.failed",
        "item.processing",
        "item.failed",
    ]


def test_a_late_watch_does_not_retell_an_item_updated_since_it_completed():
    story = Story(watches=[_watch("w1", 0)])
    story.poll("processing", _item("completed", result_url="https://cdn.example.com/1.png"))
    story.poll("processing", _item("completed", result_url="https://cdn.example.com/1b.png"))
    story.watches.append(_watch("w2", 25))
    story.poll("processing", _item("completed", result_url="https://cdn.example.com/1b.png"))
    assert story.heard == ["item.completed", "job.processing", "item.updated"]


def test_a_late_watch_catching_up_in_the_poll_of_a_change_adds_nothing():
    story = Story(watches=[_watch("w1", 0)])
    story.poll("processing", _item("processing"))
    story.watches.append(_watch("w2", 15))
    story.poll("completed", _item("completed", result_url="https://cdn.example.com/1.png"))
    story.watches.append(_watch("w3", 25))
    story.poll("completed", _item("completed", result_url="https://cdn.example.com/1.png"))
    assert story.heard == ["item.processing", "job.processing", "item.completed", "job.completed"]


def test_a_job_that_goes_back_to_processing_is_heard_each_time():
    story = Story(watches=[_watch("w1", 0)])
    story.poll("processing", _item("processing"))
    story.poll("queued", _item("processing"))
    story.poll("processing", _item("processing"))
    assert story.heard == ["item.processing", "job.processing", "job.queued", "job.processing"]


def test_a_late_watch_does_not_retell_a_completion_to_a_channel_that_skips_updates():
    story = Story(watches=[_watch("w1", 0)], channel="done")
    story.poll("processing", _item("completed", result_url="https://cdn.example.com/1.png"))
    story.poll("processing", _item("completed", result_url="https://cdn.example.com/1b.png"))
    story.watches.append(_watch("w2", 25))
    story.poll("processing", _item("completed", result_url="https://cdn.example.com/1b.png"))
    assert story.heard == ["item.completed"]


def test_a_quiet_poll_writes_no_watch_and_a_watch_s_first_poll_does():
    story = Story(watches=[_watch("w1", 0)])
    story.poll("processing", _item("processing"))
    assert story.changed == ["w1"]
    story.poll("processing", _item("processing"))
    assert story.changed == []  # nothing changed: the watch is left as stored
    story.watches.append(_watch("w2", 25))
    story.poll("processing", _item("processing"))
    assert story.changed == ["w2"]  # its first poll: its sequence and first_polled_at move
    story.poll("processing", _item("completed", result_url="https://cdn.example.com/1.png"))
    assert story.changed == ["w1", "w2"]
