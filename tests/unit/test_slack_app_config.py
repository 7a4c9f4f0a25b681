"""The slack_app section (CONTRACT section 9): defaults, the API base URL, secrets kept out of
sight. Its problems have a fixture each in tests/fixtures/config/ (slack_app_*.yaml)."""

from __future__ import annotations

import pytest

from bridge.config import ConfigError, SlackAppConfig, model_dump_redacted, parse_config

SIGNING = "8f742231b10e8888abcd99yyyzzz85a5-TOPSECRET"
TOKEN = "xoxb-app-TOPSECRET"
ENV = {"SLACK_SIGNING_SECRET": SIGNING, "SLACK_BOT_TOKEN": TOKEN}
TEXT = """
slack_app:
  signing_secret: "${SLACK_SIGNING_SECRET}"
  token: "${SLACK_BOT_TOKEN}"
"""


def test_parse_config_has_no_slack_app_by_default():
    assert parse_config("", env={}).slack_app is None


def test_parse_config_slack_app_defaults_match_the_contract():
    app = parse_config(TEXT, env=ENV).slack_app
    assert isinstance(app, SlackAppConfig)
    assert app.base_url is None
    assert app.allowed_teams == []
    assert app.signing_secret.get_secret_value() == SIGNING
    assert app.token.get_secret_value() == TOKEN


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://127.0.0.1:9000/api/", "http://127.0.0.1:9000/api/"),
        ("http://127.0.0.1:9000/api", "http://127.0.0.1:9000/api/"),
    ],
)
def test_parse_config_slack_app_base_url_ends_with_a_slash(given, used):
    text = TEXT + f"  base_url: '{given}'\n  allowed_teams: [T0ALLOWED1, T0ALLOWED2]\n"
    app = parse_config(text, env=ENV).slack_app
    assert app is not None
    assert app.base_url == used
    assert app.allowed_teams == ["T0ALLOWED1", "T0ALLOWED2"]


def test_parse_config_slack_app_missing_signing_secret_names_it():
    with pytest.raises(ConfigError) as caught:
        parse_config("slack_app: {token: '${SLACK_BOT_TOKEN}'}\n", env=ENV)
    assert caught.value.problems == ["slack_app.signing_secret: required key is missing"]
    assert TOKEN not in str(caught.value)


def test_parse_config_slack_app_unknown_key_is_an_error():
    with pytest.raises(ConfigError) as caught:
        parse_config(TEXT + "  channel: C0123456\n", env=ENV)
    [problem] = caught.value.problems
    assert problem.startswith("slack_app.channel: ")


def test_config_model_never_shows_the_slack_app_secrets():
    config = parse_config(TEXT, env=ENV)
    shown = repr(config) + str(config) + repr(model_dump_redacted(config))
    assert SIGNING not in shown
    assert TOKEN not in shown
