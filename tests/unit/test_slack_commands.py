"""parse_command and parse_button: every command of CONTRACT section 9 and every mistake."""

from __future__ import annotations

import pytest

from bridge.slackapp.commands import (
    Help,
    ListSubscriptions,
    Mistake,
    Status,
    Subscribe,
    Unsubscribe,
    job_uuid,
    parse_button,
    parse_command,
)

JOB = "0f8b7c4e-2d1a-4c3b-9e8f-1a2b3c4d5e6f"
IMP = "imp_" + "0194c3a1b2c3" + "ab" * 10
WAT = "wat_" + "0194c3a1b2c3" + "cd" * 10
SUB = "sub_" + "0194c3a1b2c3" + "ef" * 10


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("", Help()),
        ("   ", Help()),
        ("help", Help()),
        ("HELP", Help()),
        ("list", ListSubscriptions()),
        (f"status {JOB}", Status("job", JOB)),
        (f"status {JOB.upper()}", Status("job", JOB)),
        (f"status {WAT}", Status("watch", WAT)),
        (f"status {IMP}", Status("import", IMP)),
        ("subscribe account main", Subscribe("account", "main", ("*",))),
        ("  subscribe   account  main  ", Subscribe("account", "main", ("*",))),
        (
            "subscribe account main job.* item.failed",
            Subscribe("account", "main", ("job.*", "item.failed")),
        ),
        ("subscribe account main job.* job.*", Subscribe("account", "main", ("job.*",))),
        ("Subscribe Account main import.*", Subscribe("account", "main", ("import.*",))),
        (f"subscribe import {IMP}", Subscribe("import", IMP)),
        (f"subscribe job {JOB}", Subscribe("job", JOB)),
        (f"subscribe job {JOB.upper()}", Subscribe("job", JOB)),
        (f"unsubscribe {SUB}", Unsubscribe(SUB)),
    ],
)
def test_parse_command_reads_each_command(text, command):
    assert parse_command(text) == command


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("frobnicate", "Unknown command `frobnicate`"),
        ("list all", "`list` takes nothing"),
        ("status", "Usage: `status"),
        (f"status {JOB} {JOB}", "Usage: `status"),
        ("status 1234", "`1234` is not a job uuid"),
        ("status imp_123", "`imp_123` is not a job uuid"),
        ("subscribe", "Usage: `subscribe account"),
        ("subscribe account", "Usage: `subscribe account"),
        ("subscribe channel C0123", "Usage: `subscribe account"),
        ("subscribe account main jobs.*", "unknown event pattern 'jobs.*'"),
        ("subscribe account main " + " ".join(["job.*"] * 21), "At most 20 event patterns"),
        ("subscribe import imp_nothex", "`imp_nothex` is not an import id"),
        (f"subscribe import {IMP} job.*", "takes one id"),
        ("subscribe job 42", "`42` is not a job id: a job id is a UUID"),
        (f"subscribe job {JOB[:-1]}", "is not a job id"),
        (f"subscribe job {WAT}", "is not a job id"),
        ("unsubscribe", "Usage: `unsubscribe"),
        ("unsubscribe sub_1", "`sub_1` is not a subscription id"),
        (f"unsubscribe {SUB} {SUB}", "Usage: `unsubscribe"),
    ],
)
def test_parse_command_explains_each_mistake(text, says):
    parsed = parse_command(text)
    assert isinstance(parsed, Mistake)
    assert says in parsed.message


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("a&b", "a&amp;b"),
        ("`code`", "'code'"),
        ("x" * 100, "x" * 59 + "…"),
    ],
)
def test_parse_command_mistake_echoes_text_safely(text, shown):
    parsed = parse_command(text)
    assert isinstance(parsed, Mistake)
    assert f"`{shown}`" in parsed.message


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (f"import:{IMP}", ("import", IMP)),
        (f"job:{WAT}", ("job", WAT)),
        (f"job:{IMP}", None),
        (f"import:{WAT}", None),
        (f"watch:{WAT}", None),
        (IMP, None),
        ("", None),
        (f"job:{WAT}x", None),
    ],
)
def test_parse_button_reads_kind_and_id(value, parsed):
    assert parse_button(value) == parsed


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (JOB, JOB),
        (JOB.upper(), JOB),
        ("{" + JOB + "}", None),
        (JOB.replace("-", ""), None),
        ("not-a-uuid", None),
    ],
)
def test_job_uuid_accepts_only_the_hyphenated_form(text, canonical):
    assert job_uuid(text) == canonical
