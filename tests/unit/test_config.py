"""Config loading: one fixture file per kind of problem, each declaring the exact lines it expects.

A fixture's leading comment block may hold `# expect: <problem line>` (one per problem) and
`# env: NAME=value` (the environment it is loaded with; nothing else is set). Files named
`valid_*.yaml` must load; every other file must fail with exactly its expected lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from bridge.config import (
    DEFAULT_RETRY_SCHEDULE_S,
    Config,
    ConfigError,
    EmailChannelConfig,
    SlackChannelConfig,
    config_path,
    load_config,
    model_dump_redacted,
    parse_config,
    refs,
)
from bridge.events import routing

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


@dataclass(frozen=True)
class Fixture:
    path: Path
    expect: frozenset[str]
    env: dict[str, str]


def _read_fixture(path: Path) -> Fixture:
    expect: set[str] = set()
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break  # only the leading comment block declares anything
        text = line.removeprefix("#").strip()
        if text.startswith("expect:"):
            expect.add(text.removeprefix("expect:").strip())
        elif text.startswith("env:"):
            name, _, value = text.removeprefix("env:").strip().partition("=")
            env[name] = value
    return Fixture(path, frozenset(expect), env)


ALL_FIXTURES = sorted(FIXTURES.glob("*.yaml"))
VALID = [p for p in ALL_FIXTURES if p.name.startswith("valid_")]
INVALID = [p for p in ALL_FIXTURES if not p.name.startswith("valid_")]


def test_config_fixtures_declare_what_they_expect():
    assert len(VALID) >= 3
    assert len(INVALID) >= 25
    for path in INVALID:
        assert _read_fixture(path).expect, f"{path.name} expects no problem"
    for path in VALID:
        assert not _read_fixture(path).expect, f"{path.name} is valid yet expects problems"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_load_config_reports_exactly_the_expected_problems(path):
    fixture = _read_fixture(path)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=fixture.env)
    problems = caught.value.problems
    assert set(problems) == fixture.expect
    assert len(problems) == len(fixture.expect)  # no line twice
    assert all("\n" not in p for p in problems)
    assert str(caught.value) == "\n".join(problems)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_load_config_accepts_valid_fixture(path):
    fixture = _read_fixture(path)
    assert isinstance(load_config(path, env=fixture.env), Config)


def test_load_config_full_example_reads_every_section():
    fixture = _read_fixture(FIXTURES / "valid_full.yaml")
    config = load_config(fixture.path, env=fixture.env)
    assert (
        config.upstream.accounts["main"].api_key.get_secret_value() == "aigen_live_fullexamplekey"
    )
    assert config.clients["shop"].token.get_secret_value() == "shop-token-0123456789"
    assert [s.get_secret_value() for s in config.clients["shop"].webhook_secrets] == [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    ]
    assert {name: c.type for name, c in config.channels.items()} == {
        "catalog-slack": "slack",
        "catalog-hook": "slack_webhook",
        "ops-email": "email",
        "erp": "webhook",
    }
    email = config.channels["ops-email"]
    assert isinstance(email, EmailChannelConfig)
    assert email.from_ == "bridge@example.com"
    assert email.password is not None
    assert email.password.get_secret_value() == "smtp-full-example"
    assert config.routes[0].events == ["job.*", "item.failed"]
    assert config.routes[1].accounts is None
    assert config.operators["ops"].token.get_secret_value() == "ops-token-0123456789abcdef"
    assert config.retention.days == 30


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${V}", {"V": "set"}, "set"),
        ("${V:-fallback}", {}, "fallback"),
        ("${V:-fallback}", {"V": ""}, "fallback"),
        ("${V:-fallback}", {"V": "set"}, "set"),
        ("${V:-}", {}, ""),
        ("${V}", {"V": ""}, ""),
        ("pre-${A}-${B:-b}-post", {"A": "a"}, "pre-a-b-post"),
        ("${V}", {"V": "${W}"}, "${W}"),  # values are not expanded twice
        ("$V and {V}", {"V": "x"}, "$V and {V}"),
    ],
)
def test_parse_config_interpolates_environment(value, env, expected):
    config = parse_config(f"server: {{public_url: '{value}'}}", env=env)
    assert config.server.public_url == expected


def test_parse_config_names_each_missing_variable_at_each_use():
    text = "server: {host: '${H}', public_url: 'http://${H}:${P}/'}"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    assert caught.value.problems == [
        "server.host: environment variable H is not set",
        "server.public_url: environment variable H is not set",
        "server.public_url: environment variable P is not set",
    ]


def test_parse_config_reads_variables_from_the_process_by_default(monkeypatch):
    monkeypatch.setenv("PB_TEST_PUBLIC_URL", "https://bridge.example.com")
    config = parse_config("server: {public_url: '${PB_TEST_PUBLIC_URL}'}")
    assert config.server.public_url == "https://bridge.example.com"


COMMITTED_ENV = {
    "AIGEN_API_KEY": "aigen_live_COMMITTED_TOPSECRET",
    "SHOP_TOKEN": "shop-token-COMMITTED-TOPSECRET",
    "SHOP_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}


def _secret_paths(node: object, path: str = "") -> list[str]:
    """The YAML path of every SecretStr anywhere in a config."""
    if isinstance(node, SecretStr):
        return [path]
    items: list[tuple[str, object]] = []
    if isinstance(node, BaseModel):
        items = [(f"{path}.{name}", getattr(node, name)) for name in type(node).model_fields]
    elif isinstance(node, dict):
        items = [(f"{path}.{key}", value) for key, value in node.items()]
    elif isinstance(node, list):
        items = [(f"{path}[{i}]", value) for i, value in enumerate(node)]
    return [found for sub, value in items for found in _secret_paths(value, sub.lstrip("."))]


def test_load_config_committed_file_loads_with_its_variables_set():
    config = load_config(REPO_CONFIG, env=COMMITTED_ENV)
    assert config.upstream.base_url == "https://aigenstudio.app/api/v1"
    assert set(config.upstream.accounts) == {"main"}
    assert set(config.clients) == {"shop"}
    assert config.clients["shop"].accounts == ["main"]
    assert config.delivery.allowed_hosts == []


def test_load_config_committed_file_has_no_default_for_any_secret():
    secrets = _secret_paths(load_config(REPO_CONFIG, env=COMMITTED_ENV))
    assert "clients.shop.webhook_secrets[0]" in secrets  # the walk reaches every kind of secret
    with pytest.raises(ConfigError) as caught:
        load_config(REPO_CONFIG, env={})
    unset = {line.split(": ", 1)[0] for line in caught.value.problems if "is not set" in line}
    assert set(secrets) <= unset


def test_load_config_committed_file_names_every_missing_secret_at_once():
    with pytest.raises(ConfigError) as caught:
        load_config(REPO_CONFIG, env={})
    assert caught.value.problems == [
        "upstream.accounts.main.api_key: environment variable AIGEN_API_KEY is not set",
        "clients.shop.token: environment variable SHOP_TOKEN is not set",
        "clients.shop.webhook_secrets[0]: environment variable SHOP_WEBHOOK_SECRET is not set",
    ]


def test_config_defaults_match_the_contract():
    config = parse_config("", env={})
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.server.base_url == "http://127.0.0.1:8080"
    assert config.storage.url == "sqlite:///bridge.db"
    assert config.upstream.base_url == "https://aigenstudio.app/api/v1"
    assert config.upstream.timeout_s == 10
    assert config.upstream.accounts == {}
    assert config.polling.queued_interval_s == 60
    assert config.polling.processing_interval_s == 15
    assert config.polling.max_interval_s == 300
    assert config.polling.watch_ttl_h == 48
    assert config.clients == {}
    assert config.channels == {}
    assert config.routes == []
    assert config.delivery.timeout_s == 10
    assert config.delivery.retry_schedule_s == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert DEFAULT_RETRY_SCHEDULE_S == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert config.delivery.allowed_hosts == []
    assert config.templates.dir is None
    assert config.retention.days == 30


def test_config_nested_defaults_match_the_contract():
    text = """
upstream: {accounts: {main: {api_key: aigen_test_k}}}
clients: {shop: {token: shop-token-0123, accounts: [main]}}
channels:
  s: {type: slack, token: xoxb-1, channel: C0123456}
  e: {type: email, host: smtp.example.com, from: bridge@example.com, to: [ops@example.com]}
routes: [{channels: [s]}]
"""
    config = parse_config(text, env={})
    account = config.upstream.accounts["main"]
    assert (account.polls_per_hour, account.max_concurrency) == (120, 2)
    assert config.clients["shop"].webhook_secrets == []
    assert config.clients["shop"].max_active_watches == 10_000
    slack = config.channels["s"]
    assert isinstance(slack, SlackChannelConfig)
    assert slack.base_url is None
    email = config.channels["e"]
    assert isinstance(email, EmailChannelConfig)
    assert (email.port, email.starttls, email.mode) == (587, True, "summary")
    route = config.routes[0]
    assert (route.events, route.accounts, route.clients) == (["*"], None, None)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://127.0.0.1:9000/api/", "http://127.0.0.1:9000/api/"),
        ("http://127.0.0.1:9000/api", "http://127.0.0.1:9000/api/"),
    ],
)
def test_parse_config_slack_base_url_ends_with_a_slash(given, used):
    text = f"channels: {{s: {{type: slack, token: xoxb-1, channel: C1, base_url: '{given}'}}}}"
    slack = parse_config(text, env={}).channels["s"]
    assert isinstance(slack, SlackChannelConfig)
    assert slack.base_url == used


SECRETS = {
    "AIGEN_API_KEY": "aigen_live_TOPSECRETKEY",
    "SHOP_TOKEN": "Zq7-x",  # too short: its problem must not quote it
    "SHOP_WEBHOOK_SECRET": "hunter2-webhook-secret",  # not whsec_: same
    "SLACK_BOT_TOKEN": "xoxb-TOPSECRET-SLACK",
    "SMTP_PASSWORD": "TOPSECRET-SMTP",
    "ERP_SECRET": "whsec_c2VjcmV0LWZvci10aGUtZXJw",
}
SECRET_TEXT = """
upstream:
  accounts:
    main: {api_key: "${AIGEN_API_KEY}", polls_per_hour: 0}
clients:
  shop: {token: "${SHOP_TOKEN}", accounts: [main], webhook_secrets: ["${SHOP_WEBHOOK_SECRET}"]}
channels:
  slack: {type: slack, token: "${SLACK_BOT_TOKEN}", channel: C0123456, colour: red}
  mail: {type: email, host: h, from: f@example.com, to: [], password: "${SMTP_PASSWORD}"}
  erp: {type: webhook, url: "https://erp.example.com", secret: "${ERP_SECRET}", secrets: 5}
routes: [{channels: [slak]}]
"""


def test_config_error_never_shows_a_secret():
    with pytest.raises(ConfigError) as caught:
        parse_config(SECRET_TEXT, env=SECRETS)
    assert len(caught.value.problems) == 7
    shown = str(caught.value) + repr(caught.value)
    for secret in SECRETS.values():
        assert secret not in shown


@pytest.mark.parametrize(
    "text",
    [
        'clients: {shop: {token: "aigen_live_LEAKED_IN_YAML, accounts: [main]}}\n',
        "upstream: {accounts: {main: {api_key: aigen_live_LEAKED_IN_YAML: x}}}\n",
        "upstream:\n  accounts:\n    main: {api_key: aigen_live_LEAKED_IN_YAML}\n  - x\n",
    ],
)
def test_config_error_for_broken_yaml_does_not_quote_the_line(text):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    [problem] = caught.value.problems
    assert problem.startswith("(file): not valid YAML at line ")
    assert "LEAKED" not in problem


def test_config_model_never_shows_a_secret():
    env = {
        **SECRETS,
        "SHOP_TOKEN": "shop-token-TOPSECRET",
        "SHOP_WEBHOOK_SECRET": SECRETS["ERP_SECRET"],
    }
    text = SECRET_TEXT.replace("polls_per_hour: 0", "polls_per_hour: 1")
    text = text.replace(", colour: red", "").replace("to: []", "to: [o@example.com]")
    text = text.replace(", secrets: 5", "").replace("[slak]", "[slack]")
    config = parse_config(text, env=env)
    assert isinstance(config.upstream.accounts["main"].api_key, SecretStr)
    shown = repr(config) + str(config) + repr(model_dump_redacted(config))
    for secret in env.values():
        assert secret not in shown
    assert config.clients["shop"].token.get_secret_value() == "shop-token-TOPSECRET"


def test_config_model_never_shows_the_database_password():
    url = "postgresql://bridge:pg-PASSWORD-secret@db.internal:5432/bridge"
    text = SECRET_TEXT.replace("polls_per_hour: 0", "polls_per_hour: 1")
    text = text.replace(", colour: red", "").replace("to: []", "to: [o@example.com]")
    text = text.replace(", secrets: 5", "").replace("[slak]", "[slack]")
    env = {
        **SECRETS,
        "SHOP_TOKEN": "shop-token-TOPSECRET",
        "SHOP_WEBHOOK_SECRET": SECRETS["ERP_SECRET"],
    }
    config = parse_config(f"storage: {{url: '{url}'}}\n" + text, env=env)
    shown = repr(config) + str(config) + repr(config.storage) + repr(model_dump_redacted(config))
    assert "pg-PASSWORD-secret" not in shown
    assert "postgresql://bridge:***@db.internal:5432/bridge" in shown
    assert config.storage.url == url  # the store still connects with it


def test_load_config_missing_file_is_one_clear_problem(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml", env={})
    assert caught.value.problems == [
        f"(file): cannot read {tmp_path / 'nope.yaml'}: No such file or directory"
    ]


def test_load_config_binary_file_is_one_clear_problem(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"server: {host: \xff\xfe}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.problems == [f"(file): cannot read {path}: not UTF-8 text"]


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        ("given.yaml", "from-env.yaml", "given.yaml"),
        (None, "from-env.yaml", "from-env.yaml"),
        (None, None, "config.yaml"),
        (None, "", "config.yaml"),
    ],
)
def test_config_path_prefers_flag_then_environment_then_default(
    monkeypatch, explicit, env, expected
):
    if env is None:
        monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    else:
        monkeypatch.setenv("BRIDGE_CONFIG", env)
    assert config_path(explicit) == Path(expected)


def test_parse_config_has_no_operators_by_default():
    assert parse_config("", env={}).operators == {}


def test_config_reserved_channel_name_is_the_routers_webhook_destination():
    assert refs.WEBHOOK_URL == routing.WEBHOOK_URL


def test_config_token_clash_never_shows_the_token():
    text = """
upstream: {accounts: {main: {api_key: aigen_test_k}}}
clients: {shop: {token: "${T}", accounts: [main]}}
operators: {ops: {token: "${T}"}}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={"T": "TOPSECRET-shared-token"})
    assert caught.value.problems == [
        "operators.ops.token: the same token as clients.shop.token; give each its own"
    ]
    assert "TOPSECRET" not in str(caught.value) + repr(caught.value)
