"""Slack, imports: one message per import, edits coalesced per edit_interval_s, failures in its
thread, a final broadcast; against the Slack Web API stand-in with a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from bridge.delivery.channels import Message
from bridge.delivery.channels.slack import SlackChannel
from bridge.devtools.localserver import serving
from bridge.events.import_view import import_view
from bridge.rendering import Renderer
from bridge.rendering.import_samples import sample_import_record
from bridge.store.imports import FailureRecord
from tests.clock import FakeClock
from tests.plugins.job_story import MemoryState
from tests.plugins.slack_standin import SlackStandin

PUBLIC_URL = "https://bridge.example.com"
IMPORT_ID = "imp_0194c3a1b2c3d4e5f60718293a4b5c6d"


@dataclass
class Failures:
    """The ImportFailures protocol over a list, ids from 1."""

    rows: list[FailureRecord]

    def add(self, count: int, *, prefix: str = "sku") -> None:
        start = len(self.rows)
        for n in range(start + 1, start + count + 1):
            self.rows.append(
                FailureRecord(n, "job-1", f"item-{n}", f"{prefix}-{n:03d}", "segmentation", "bad")
            )

    async def failures(self, *, import_id: str, limit: int, after: int | None = None):
        return [r for r in self.rows if r.id > (after or 0)][:limit]

    async def iter_failures(self, *, import_id: str, batch: int = 500):
        yield list(self.rows)


@pytest.fixture(scope="module")
def renderer():
    return Renderer()


@pytest.fixture
async def slack():
    standin = SlackStandin()
    async with serving(standin.app) as server:
        standin.url = server.url
        yield standin


def channel_for(slack, renderer, state, clock, failures, **overrides: Any) -> SlackChannel:
    return SlackChannel(
        name="catalog-slack",
        token=slack.token,
        channel="C0123456",
        renderer=renderer,
        state=state,
        public_url=PUBLIC_URL,
        base_url=slack.api_url,
        timeout_s=5.0,
        min_interval_s=0.0,
        edit_interval_s=10.0,
        failures=failures,
        now=clock.now,
        **overrides,
    )


def message(clock: FakeClock, n: int, *, status: str = "running", completed: int = 0) -> Message:
    """The n-th delivery of the import, its view as read at `clock`; `completed` moves counts."""
    record = sample_import_record(status)
    tally = replace(record.tally, images_completed=record.tally.images_completed + completed)
    record = replace(record, tally=tally, updated_at=clock.now())
    view = import_view(record, now=clock.now())
    return Message(
        delivery_id=f"dlv_{n}",
        event_id=f"evt_{n}",
        event_type="item.completed",
        timestamp=clock.now(),
        payload={"type": "item.completed", "timestamp": "", "data": {}},
        job=None,
        import_id=IMPORT_ID,
        import_view=view,
    )


def texts(blocks) -> str:
    out = []
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            out.append(text["text"])
        out += [f["text"] for f in block.get("fields") or []]
        out += [e["text"] for e in block.get("elements") or [] if "text" in e]
    return "\n".join(out)


async def test_slack_import_edits_at_most_once_per_interval_and_puts_off_the_rest(slack, renderer):
    clock, state = FakeClock(), MemoryState()
    channel = channel_for(slack, renderer, state, clock, None)

    first = await channel.send(message(clock, 1))
    clock.advance(3)
    early = await channel.send(message(clock, 2, completed=5))
    same = await channel.send(message(clock, 2, completed=5))  # put off again, not failed
    clock.advance(7)
    due = await channel.send(message(clock, 2, completed=5))
    covered = await channel.send(message(clock, 3, completed=5))

    [posted] = slack.top_level()
    assert first.defer_until is None
    assert early.defer_until == clock.now() and same.defer_until == clock.now()
    assert due.defer_until is None and covered.defer_until is None
    assert len(slack.answered("chat.update")) == 1  # the one at the end of the interval
    assert "*Images completed*\n209 of 600" in texts(posted.blocks)


async def test_slack_import_never_rolls_the_message_back_to_an_older_read(slack, renderer):
    clock, state = FakeClock(), MemoryState()
    channel = channel_for(slack, renderer, state, clock, None)
    older = message(clock, 1, completed=1)
    clock.advance(1)
    await channel.send(message(clock, 2, completed=2))

    clock.advance(60)
    result = await channel.send(older)

    [posted] = slack.top_level()
    assert result.defer_until is None
    assert slack.answered("chat.update") == []
    assert "*Images completed*\n206 of 600" in texts(posted.blocks)


async def test_slack_import_keeps_its_message_and_interval_across_a_restart(slack, renderer):
    clock, state = FakeClock(), MemoryState()
    await channel_for(slack, renderer, state, clock, None).send(message(clock, 1))
    clock.advance(2)

    after = channel_for(slack, renderer, state, clock, None)  # a new process, the same database
    put_off = await after.send(message(clock, 2, completed=1))
    clock.advance(8)
    await after.send(message(clock, 2, completed=1))

    [posted] = slack.top_level()
    assert put_off.defer_until == clock.now()
    assert [c.body["ts"] for c in slack.answered("chat.update")] == [posted.ts]
    assert state.values[f"slack:catalog-slack:import:{IMPORT_ID}"]["ts"] == posted.ts


async def test_slack_import_replies_with_new_failures_20_lines_then_a_count(slack, renderer):
    clock, state, failures = FakeClock(), MemoryState(), Failures([])
    channel = channel_for(slack, renderer, state, clock, failures)
    failures.add(3, prefix="<b>&sku")
    await channel.send(message(clock, 1))
    await channel.send(message(clock, 2))  # nothing new: no reply
    failures.add(25)
    clock.advance(1)
    await channel.send(message(clock, 3, completed=1))  # its edit is put off; the reply is not

    [posted] = slack.top_level()
    first, second = slack.replies(posted.ts)
    assert "&lt;b&gt;&amp;sku-001" in texts(first.blocks)
    assert "<b>" not in texts(first.blocks)
    lines = [b for b in second.blocks if b["type"] == "section"][1:]
    assert len(lines) == 20
    assert "sku-004" in texts(second.blocks) and "sku-023" in texts(second.blocks)
    assert "…and 5 more" in texts(second.blocks)
    assert not first.reply_broadcast and not second.reply_broadcast


@pytest.mark.parametrize(("status", "broadcasts"), [("partially_completed", 1), ("completed", 0)])
async def test_slack_import_broadcasts_once_when_it_ends_with_failures(
    slack, renderer, status, broadcasts
):
    clock, state = FakeClock(), MemoryState()
    channel = channel_for(slack, renderer, state, clock, None)
    await channel.send(message(clock, 1))
    clock.advance(1)
    final = message(clock, 2, status=status)

    put_off = await channel.send(final)
    clock.advance(10)
    await channel.send(final)
    await channel.send(replace(final, delivery_id="dlv_3"))

    [posted] = slack.top_level()
    assert put_off.defer_until is not None
    assert len([r for r in slack.replies(posted.ts) if r.reply_broadcast]) == broadcasts
    assert len(slack.answered("chat.update")) == 1
    assert status.replace("_", " ").capitalize() in texts(posted.blocks)


async def test_slack_import_message_names_are_escaped_and_link_the_console(slack, renderer):
    clock = FakeClock()
    channel = channel_for(slack, renderer, MemoryState(), clock, None)

    await channel.send(message(clock, 1))

    [posted] = slack.top_level()
    text = texts(posted.blocks)
    assert "Import Autumn &lt;catalog&gt; &amp; *friends* 2026" in text
    assert "owner: &lt;catalog-team&gt; &amp; co" in text
    assert f"<{PUBLIC_URL}/console/imports/{IMPORT_ID}|Open in the console>" in text
