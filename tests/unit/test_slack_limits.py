import asyncio

import pytest

from bridge.delivery.channels import SendError
from bridge.delivery.channels.slack_blocks import MAX_BLOCKS, fit_blocks
from bridge.delivery.channels.slack_pacer import Pacer


def section(text):
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ([section("short")], [section("short")]),
        ([section("x" * 3001)], [section("x" * 2999 + "…")]),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 200}}],
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 149 + "…"}}],
        ),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2500}] * 12}],
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 1999 + "…"}] * 10}],
        ),
        (
            [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
            [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10}],
        ),
        (  # non-text strings (URLs, ids) are left alone, however long
            [{"type": "image", "image_url": "u" * 4000, "alt_text": "a"}],
            [{"type": "image", "image_url": "u" * 4000, "alt_text": "a"}],
        ),
    ],
)
def test_fit_blocks_clips_text_to_slack_limits(blocks, expected):
    assert fit_blocks(blocks) == expected


def button(text):
    return {"type": "button", "action_id": "mute", "text": {"type": "plain_text", "text": text}}


def dialog(title, text, confirm):
    return {
        "title": {"type": "plain_text", "text": title},
        "text": {"type": "mrkdwn", "text": text},
        "confirm": {"type": "plain_text", "text": confirm},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        (button("Mute"), button("Mute")),
        (button("b" * 80), button("b" * 74 + "…")),
        (
            {**button("Mute"), "confirm": dialog("t" * 120, "x" * 400, "c" * 40)},
            {**button("Mute"), "confirm": dialog("t" * 99 + "…", "x" * 299 + "…", "c" * 29 + "…")},
        ),
    ],
)
def test_fit_blocks_clips_buttons_and_their_confirm_dialogs(element, expected):
    [fitted] = fit_blocks([{"type": "actions", "elements": [element]}])

    assert fitted == {"type": "actions", "elements": [expected]}


def test_fit_blocks_keeps_at_most_25_buttons_in_an_actions_block():
    [fitted] = fit_blocks([{"type": "actions", "elements": [button(str(n)) for n in range(30)]}])

    assert len(fitted["elements"]) == 25


def test_fit_blocks_keeps_the_buttons_when_it_leaves_blocks_out():
    actions = {"type": "actions", "elements": [button("Mute")]}

    fitted = fit_blocks([*(section(str(n)) for n in range(80)), actions])

    assert len(fitted) == MAX_BLOCKS
    assert fitted[-1] == actions
    assert fitted[47] == section("47")
    assert "32 more blocks" in fitted[-2]["elements"][0]["text"]


def test_fit_blocks_keeps_at_most_50_blocks_and_says_how_many_were_left_out():
    fitted = fit_blocks([section(str(n)) for n in range(80)])

    assert len(fitted) == MAX_BLOCKS
    assert fitted[48] == section("48")
    assert fitted[-1]["type"] == "context"
    assert "31 more blocks" in fitted[-1]["elements"][0]["text"]


@pytest.mark.parametrize("blocks", [{"blocks": []}, ["text"], "[]", None])
def test_fit_blocks_refuses_what_is_not_a_list_of_blocks(blocks):
    with pytest.raises(ValueError):
        fit_blocks(blocks)


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def clock(self):
        return self.now

    async def sleep(self, seconds):
        self.slept.append(round(seconds, 6))
        self.now += seconds


async def test_pacer_spaces_messages_per_channel():
    time = FakeTime()
    pacer = Pacer(interval_s=1.0, clock=time.clock, sleep=time.sleep)

    await pacer.wait("C1")
    await pacer.wait("C2")  # another channel: no wait
    time.now += 0.4
    await pacer.wait("C1")
    time.now += 2.0
    await pacer.wait("C1")  # long enough since the last one

    assert time.slept == [0.6]


async def test_pacer_serialises_concurrent_senders_on_one_channel():
    time = FakeTime()
    pacer = Pacer(interval_s=1.0, clock=time.clock, sleep=time.sleep)

    await asyncio.gather(*(pacer.wait("C1") for _ in range(4)))

    assert time.slept == [1.0, 1.0, 1.0]


async def test_pacer_hold_refuses_until_retry_after_has_passed():
    time = FakeTime()
    pacer = Pacer(interval_s=0.0, clock=time.clock, sleep=time.sleep)
    pacer.hold("C1", 30.0)

    time.now += 10.0
    with pytest.raises(SendError) as held:
        await pacer.wait("C1")
    await pacer.wait("C2")
    time.now += 20.0
    await pacer.wait("C1")

    assert held.value.retry_after_s == pytest.approx(20.0)
    assert held.value.status_code == 429
