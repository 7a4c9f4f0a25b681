import asyncio
import json

import httpx
import pytest

from bridge.delivery.channels import SendError
from bridge.delivery.channels.slack import SlackChannel
from bridge.delivery.channels.slack_pacer import Pacer
from bridge.delivery.channels.slack_webhook import SlackWebhookChannel
from bridge.devtools.localserver import serving
from bridge.rendering import Renderer
from tests.plugins.job_story import JOB_ID, MemoryState, job_story, retried
from tests.plugins.slack_standin import SlackStandin
from tests.ports import free_port

PUBLIC_URL = "https://bridge.example.com"


@pytest.fixture(scope="module")
def renderer():
    return Renderer()


@pytest.fixture
async def slack():
    standin = SlackStandin()
    async with serving(standin.app) as server:
        standin.url = server.url
        yield standin


def make_channel(slack, renderer, state, **overrides):
    settings = {
        "name": "catalog-slack",
        "token": slack.token,
        "channel": "C0123456",
        "renderer": renderer,
        "state": state,
        "public_url": PUBLIC_URL,
        "base_url": slack.api_url,
        "timeout_s": 5.0,
        "min_interval_s": 0.0,
    } | overrides
    return SlackChannel(**settings)


def all_texts(blocks):
    """Every text string in a Block Kit structure, in order."""
    if isinstance(blocks, list):
        return [t for b in blocks for t in all_texts(b)]
    if isinstance(blocks, dict):
        own = [blocks["text"]] if isinstance(blocks.get("text"), str) else []
        return own + [t for v in blocks.values() if not isinstance(v, str) for t in all_texts(v)]
    return []


async def test_slack_channel_posts_once_then_edits_in_place(slack, renderer):
    channel = make_channel(slack, renderer, MemoryState())
    story = job_story(items=4, failing=frozenset({2}))

    for message in story:
        await channel.send(message)

    [posted] = slack.top_level()
    assert len(slack.answered("chat.postMessage")) == 2  # the job's message and one failure reply
    assert len(slack.answered("chat.update")) == len(story) - 1
    assert posted.edits == len(story) - 1
    text = "\n".join(all_texts(posted.blocks))
    assert "Partially completed" in text
    assert "*Done*\n3 of 4" in text and "*Failed*\n1" in text and "*Pending*\n0" in text
    assert "*Credits used*\n3" in text
    assert f"<{PUBLIC_URL}|Open photo-bridge>" in text
    assert "Partially completed, 3 of 4 done" in posted.text


async def test_slack_channel_shows_progress_while_the_job_runs(slack, renderer):
    channel = make_channel(slack, renderer, MemoryState())
    story = job_story(items=10, failing=frozenset())

    for message in story[:8]:  # queued, processing, then 3 images done and the 4th started
        await channel.send(message)

    [posted] = slack.top_level()
    text = "\n".join(all_texts(posted.blocks))
    assert "*Processing*" in text and "30%" in text
    assert "*Done*\n3 of 10" in text and "*Pending*\n7" in text


async def test_slack_channel_replies_once_per_failed_item_in_the_thread(slack, renderer):
    channel = make_channel(slack, renderer, MemoryState())
    story = job_story(items=3, failing=frozenset({2}), error_message="Edge <unclear> & blurry")
    failed = next(m for m in story if m.event_type == "item.failed")

    for message in story[: story.index(failed) + 1]:
        await channel.send(message)
    await channel.send(retried(failed))

    [posted] = slack.top_level()
    [reply] = slack.replies(posted.ts)
    text = "\n".join(all_texts(reply.blocks))
    assert "sku-02" in text
    assert "segmentation_failed" in text
    assert "Edge &lt;unclear&gt; &amp; blurry (image 2)" in text
    assert not reply.reply_broadcast
    assert "sku-02 failed" in reply.text


async def test_slack_channel_broadcasts_a_final_failure(slack, renderer):
    channel = make_channel(slack, renderer, MemoryState())
    story = job_story(items=2, failing=frozenset({1, 2}))

    for message in story:
        await channel.send(message)
    await channel.send(retried(story[-1]))

    [posted] = slack.top_level()
    replies = slack.replies(posted.ts)
    broadcasts = [r for r in replies if r.reply_broadcast]
    assert [r.reply_broadcast for r in replies] == [False, False, True]
    assert "failed" in broadcasts[0].text
    assert ":x: *Failed*" in "\n".join(all_texts(posted.blocks))


async def test_slack_channel_keeps_editing_the_same_message_after_a_restart(slack, renderer):
    state = MemoryState()  # stands for the database, which outlives the process
    story = job_story(items=4, failing=frozenset({3}))
    before = make_channel(slack, renderer, state)
    for message in story[:4]:
        await before.send(message)

    after = make_channel(slack, renderer, state)  # a new process: new client, new pacer
    for message in story[4:]:
        await after.send(message)

    [posted] = slack.top_level()
    assert posted.edits == len(story) - 1
    assert {c.body["ts"] for c in slack.answered("chat.update")} == {posted.ts}
    assert len(slack.replies(posted.ts)) == 1
    assert "Partially completed" in posted.text
    assert state.values[f"slack:catalog-slack:main:{JOB_ID}"]["ts"] == posted.ts


async def test_slack_channel_20_items_with_long_errors_stay_within_slack_limits(slack, renderer):
    channel = make_channel(slack, renderer, MemoryState())
    long_error = "The product could not be separated from a busy background. " * 100  # ~6,000
    metadata = {f"key{n:02d}": "v" * 500 for n in range(20)}
    story = job_story(
        items=20, failing=frozenset(range(1, 21)), error_message=long_error, metadata=metadata
    )

    for message in story:
        await channel.send(message)

    assert [c for c in slack.calls if c.answer != "ok"] == []
    [posted] = slack.top_level()
    replies = slack.replies(posted.ts)
    assert len(replies) == 21  # 20 failed images and the final-failure broadcast
    assert all(len(t) <= 3000 for r in [posted, *replies] for t in all_texts(r.blocks))
    assert all(len(r.blocks) <= 50 for r in [posted, *replies])
    assert "…" in all_texts(replies[0].blocks)[0]
    assert "*Failed*\n20" in all_texts(posted.blocks)


async def test_slack_channel_ratelimited_gives_retry_after_and_holds_the_channel(slack, renderer):
    clock = [1000.0]
    pacer = Pacer(interval_s=0.0, clock=lambda: clock[0])
    channel = make_channel(slack, renderer, MemoryState(), pacer=pacer)
    story = job_story(items=2)
    slack.ratelimit_next(retry_after=7)

    with pytest.raises(SendError) as first:
        await channel.send(story[0])
    with pytest.raises(SendError) as held:
        await channel.send(story[0])
    calls_while_held = len(slack.calls)
    clock[0] += 7.0
    await channel.send(story[0])

    assert (first.value.status_code, first.value.retry_after_s) == (429, 7.0)
    assert not first.value.permanent
    assert held.value.retry_after_s == pytest.approx(7.0)
    assert calls_while_held == 1  # the held attempt never reached Slack
    assert len(slack.top_level()) == 1


async def test_slack_channel_paces_one_message_per_second_per_channel(slack, renderer):
    clock = [0.0]
    waits = []

    async def fake_sleep(seconds):
        waits.append(round(seconds, 3))
        clock[0] += seconds

    pacer = Pacer(interval_s=1.0, clock=lambda: clock[0], sleep=fake_sleep)
    channel = make_channel(slack, renderer, MemoryState(), pacer=pacer)
    story = job_story(items=2, failing=frozenset({1}))

    for message in story[:4]:  # queued, processing, item.processing, item.failed (+ reply)
        clock[0] += 0.25
        await channel.send(message)

    assert waits == [0.75, 0.75, 0.75, 1.0]
    assert len(slack.calls) == 5


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"channel": "C0NOTHERE"}, "channel_not_found"),
        ({"token": "xoxb-wrong-token-9f8e7d"}, "invalid_auth"),
    ],
)
async def test_slack_channel_dead_ends_are_permanent(slack, renderer, overrides, error):
    channel = make_channel(slack, renderer, MemoryState(), **overrides)

    with pytest.raises(SendError) as failure:
        await channel.send(job_story(items=1)[0])

    assert failure.value.permanent
    assert error in str(failure.value)
    assert "xoxb" not in str(failure.value) and "xoxb" not in (failure.value.response_excerpt or "")


async def test_slack_channel_other_errors_are_retried(slack, renderer):
    channel = make_channel(slack, renderer, MemoryState())
    slack.fail_next("internal_error", status=500)

    with pytest.raises(SendError) as failure:
        await channel.send(job_story(items=1)[0])

    assert not failure.value.permanent
    assert failure.value.status_code == 500


async def test_slack_channel_posts_again_when_its_message_was_deleted(slack, renderer):
    state = MemoryState()
    channel = make_channel(slack, renderer, state)
    story = job_story(items=2)
    await channel.send(story[0])
    slack.messages.clear()

    await channel.send(story[1])

    [posted] = slack.top_level()
    assert state.values[f"slack:catalog-slack:main:{JOB_ID}"]["ts"] == posted.ts


async def test_slack_channel_unreachable_is_a_retryable_error(renderer):
    port = free_port()
    channel = SlackChannel(
        name="catalog-slack",
        token="xoxb-secret-token",
        channel="C0123456",
        renderer=renderer,
        state=MemoryState(),
        public_url=PUBLIC_URL,
        base_url=f"http://127.0.0.1:{port}/api/",
        timeout_s=2.0,
        min_interval_s=0.0,
    )

    with pytest.raises(SendError) as failure:
        await channel.send(job_story(items=1)[0])

    assert not failure.value.permanent
    assert "connection error" in str(failure.value)


async def test_slack_channel_times_out_on_a_stalled_server(slack, renderer):
    slack.stall = asyncio.Event()
    channel = make_channel(slack, renderer, MemoryState(), timeout_s=0.3)

    with pytest.raises(SendError) as failure:
        await channel.send(job_story(items=1)[0])
    slack.stall.set()

    assert "timeout" in str(failure.value)
    assert not failure.value.permanent


async def test_slack_channel_two_watches_on_one_job_share_one_message(slack, renderer):
    channel = make_channel(slack, renderer, MemoryState())
    first = job_story(items=2, failing=frozenset({1}), watch_id="wat_a")
    second = job_story(items=2, failing=frozenset({1}), watch_id="wat_b")

    for a, b in zip(first, second, strict=True):
        await asyncio.gather(channel.send(a), channel.send(b))

    [posted] = slack.top_level()
    assert len(slack.replies(posted.ts)) == 1


# ----- the incoming-webhook variant ---------------------------------------------------------------


@pytest.fixture
async def http():
    async with httpx.AsyncClient() as client:
        yield client


async def test_slack_webhook_channel_posts_a_new_message_per_event(slack, renderer, http):
    channel = SlackWebhookChannel(
        name="catalog-hook",
        url=slack.webhook_url,
        renderer=renderer,
        http=http,
        public_url=PUBLIC_URL,
    )
    story = job_story(items=2, failing=frozenset({2}), error_message="Too dark")

    for message in story:
        result = await channel.send(message)

    assert result.status_code == 200
    assert len(slack.webhook_messages) == len(story)
    failed = slack.webhook_messages[5]
    assert "Image `sku-02` failed" in failed["text"]
    assert "Too dark (image 2)" in json.dumps(failed["blocks"])


@pytest.mark.parametrize(
    ("script", "status", "permanent", "retry_after"),
    [
        ({"error": "channel_is_archived", "status": 410}, 410, True, None),
        ({"error": "invalid_payload", "status": 400}, 400, False, None),
        ({"ratelimit": 12}, 429, False, 12.0),
    ],
)
async def test_slack_webhook_channel_maps_failures(
    slack, renderer, http, script, status, permanent, retry_after
):
    if "ratelimit" in script:
        slack.ratelimit_next(retry_after=script["ratelimit"], method="webhook")
    else:
        slack.fail_next(script["error"], method="webhook", status=script["status"])
    channel = SlackWebhookChannel(name="hook", url=slack.webhook_url, renderer=renderer, http=http)

    with pytest.raises(SendError) as failure:
        await channel.send(job_story(items=1)[0])

    assert (failure.value.status_code, failure.value.permanent) == (status, permanent)
    assert failure.value.retry_after_s == retry_after
    assert "standinsecret" not in str(failure.value)


async def test_slack_webhook_channel_unknown_hook_is_permanent(slack, renderer, http):
    url = slack.webhook_url.replace("standinsecret", "revokedsecret")
    channel = SlackWebhookChannel(name="hook", url=url, renderer=renderer, http=http)

    with pytest.raises(SendError) as failure:
        await channel.send(job_story(items=1)[0])

    assert failure.value.permanent
    assert "revokedsecret" not in str(failure.value)


async def test_slack_channel_fits_an_oversized_override_inside_slack_limits(slack, tmp_path):
    override = tmp_path / "slack" / "message.json.j2"
    override.parent.mkdir()
    override.write_text(
        '[{% for i in job["items"] %}'
        '{"type": "section", "text": {"type": "mrkdwn", "text": {{ ("x" * 4000) | json }}}},'
        '{"type": "divider"},'
        '{"type": "context", "elements": [{"type": "mrkdwn", "text": {{ i.id | json }}}]}'
        "{% if not loop.last %},{% endif %}{% endfor %}]"
    )
    channel = make_channel(slack, Renderer(override_dir=tmp_path), MemoryState())

    await channel.send(job_story(items=20)[0])  # 60 blocks of up to 4,000 characters asked for

    [posted] = slack.top_level()
    assert len(posted.blocks) == 50
    assert max(len(t) for t in all_texts(posted.blocks)) == 3000


async def test_slack_channel_message_too_long_is_permanent(slack, renderer):
    channel = make_channel(slack, renderer, MemoryState())
    slack.fail_next("msg_too_long")

    with pytest.raises(SendError) as failure:
        await channel.send(job_story(items=1)[0])

    assert failure.value.permanent
    assert "msg_too_long" in str(failure.value)


async def test_slack_channel_template_failure_is_permanent(slack, tmp_path):
    override = tmp_path / "slack" / "message.txt.j2"
    override.parent.mkdir()
    override.write_text("{{ data.metadata.ticket }}")
    channel = make_channel(slack, Renderer(override_dir=tmp_path), MemoryState())

    with pytest.raises(SendError) as failure:
        await channel.send(job_story(items=1)[0])

    assert "'dict object' has no attribute 'ticket'" in str(failure.value)
    assert str(override) in str(failure.value)
    assert failure.value.permanent  # the same event renders the same way on every retry
    assert slack.calls == []
