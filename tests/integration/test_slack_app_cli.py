"""check-config and send-test know the Slack app, run as real processes."""

from __future__ import annotations

from pathlib import Path

from bridge.devtools.localserver import serving
from tests.integration.test_cli import run_cli, run_cli_async, write
from tests.plugins.slack_standin import SlackStandin

SIGNING = "8f742231b10e8888abcd99yyyzzz85a5-CLI-TOPSECRET"


def app_config(tmp_path: Path, *, base_url: str = "", teams: str = "[]") -> None:
    write(
        tmp_path / "config.yaml",
        f"""
        slack_app:
          signing_secret: "${{SLACK_SIGNING_SECRET}}"
          token: "${{SLACK_BOT_TOKEN}}"
          allowed_teams: {teams}
          {f'base_url: "{base_url}"' if base_url else ""}
        """,
    )


def test_check_config_reports_the_slack_app(tmp_path):
    app_config(tmp_path, teams="[T0ALLOWED1, T0ALLOWED2]")
    env = {"SLACK_SIGNING_SECRET": SIGNING, "SLACK_BOT_TOKEN": "xoxb-CLI-TOPSECRET"}
    ran = run_cli("check-config", cwd=tmp_path, env=env)
    assert ran.code == 0, ran.err
    assert ran.out.splitlines()[1:] == ["slack_app: configured (2 allowed teams)"]
    assert SIGNING not in ran.both and "xoxb-CLI-TOPSECRET" not in ran.both


def test_check_config_names_a_missing_signing_secret(tmp_path):
    write(tmp_path / "config.yaml", "slack_app: {token: xoxb-CLI-TOPSECRET}\n")
    ran = run_cli("check-config", cwd=tmp_path)
    assert ran.code == 1
    assert ran.err.splitlines() == ["slack_app.signing_secret: required key is missing"]
    assert "xoxb-CLI-TOPSECRET" not in ran.both


async def test_send_test_posts_to_a_slack_app_channel(tmp_path):
    standin = SlackStandin()
    async with serving(standin.app) as server:
        standin.url = server.url
        app_config(tmp_path, base_url=standin.api_url)
        env = {"SLACK_SIGNING_SECRET": SIGNING, "SLACK_BOT_TOKEN": standin.token}
        ran = await run_cli_async(
            "send-test", "--slack-app-channel", "C0123456", cwd=tmp_path, env=env
        )
    assert ran.code == 0, ran.err
    assert ran.out.splitlines() == [
        "OK: sent a sample item.failed to Slack app channel 'C0123456' (HTTP 200)"
    ]
    [message] = standin.top_level()
    assert message.channel == "C0123456"
    assert {c.token for c in standin.calls} == {standin.token}
    assert standin.token not in ran.both


def test_send_test_slack_app_channel_needs_slack_app(tmp_path):
    write(tmp_path / "config.yaml", "")
    ran = run_cli("send-test", "--slack-app-channel", "C0123456", cwd=tmp_path)
    assert ran.code == 1
    assert "slack_app is not configured" in ran.err


def test_send_test_needs_one_channel_or_the_other(tmp_path):
    write(tmp_path / "config.yaml", "")
    ran = run_cli("send-test", cwd=tmp_path)
    assert ran.code == 2
    assert "--slack-app-channel" in ran.err
