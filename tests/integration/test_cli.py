"""The console script, run as a real process: check-config, send-test, demo and simulator.

Every run gets a clean environment (PATH and PYTHONPATH only), so the developer's own variables
cannot leak in, and a timeout, so a hung command fails the test instead of the suite.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bridge.devtools.localserver import serving
from tests.plugins.slack_standin import SlackStandin
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "config"
TIMEOUT_S = 30.0
SECRET_WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_WHSEC = "whsec_c2VjcmV0LWZvci10aGUtZXJw"


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **(extra or {})}


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = TIMEOUT_S
) -> Ran:
    """Run `photo-bridge ARGS` to completion (for tests that serve nothing in their own loop)."""
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        cwd=cwd,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


async def run_cli_async(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Ran:
    """Run `photo-bridge ARGS` without blocking the loop that serves the stand-ins it talks to."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        *args,
        cwd=cwd,
        env=_env(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT_S):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def expected_lines(fixture: Path) -> set[str]:
    lines = fixture.read_text(encoding="utf-8").splitlines()
    return {
        line.removeprefix("# expect:").strip() for line in lines if line.startswith("# expect:")
    }


# ----- check-config ---------------------------------------------------------------------------

VALID = """
upstream:
  accounts:
    main: {api_key: "${AIGEN_API_KEY}"}
clients:
  shop: {token: "${SHOP_TOKEN}", accounts: [main], webhook_secrets: ["${SHOP_WEBHOOK_SECRET}"]}
channels:
  erp: {type: webhook, url: "https://erp.example.com/hooks", secret: "${ERP_SECRET}"}
routes:
  - {events: ["job.*"], channels: [erp]}
"""
VALID_ENV = {
    "AIGEN_API_KEY": "aigen_live_CLI_TOPSECRET",
    "SHOP_TOKEN": "shop-token-CLI-TOPSECRET",
    "SHOP_WEBHOOK_SECRET": SECRET_WHSEC,
    "ERP_SECRET": OTHER_WHSEC,
}


def test_check_config_valid_file_prints_one_ok_line(tmp_path):
    write(tmp_path / "bridge.yaml", VALID)
    ran = run_cli("check-config", "--config", "bridge.yaml", cwd=tmp_path, env=VALID_ENV)
    assert ran.code == 0, ran.err
    assert ran.out.splitlines() == ["bridge.yaml: OK (1 accounts, 1 clients, 1 channels, 1 routes)"]
    assert ran.err == ""
    for secret in VALID_ENV.values():
        assert secret not in ran.both


def test_check_config_invalid_file_prints_one_line_per_problem(tmp_path):
    fixture = FIXTURES / "several_problems.yaml"
    ran = run_cli("check-config", "--config", str(fixture), cwd=tmp_path)
    assert ran.code == 1
    assert ran.out == ""
    assert set(ran.err.splitlines()) == expected_lines(fixture)
    assert len(ran.err.splitlines()) == len(expected_lines(fixture))


def test_check_config_problems_never_show_secrets(tmp_path):
    text = VALID.replace("routes:", "polling: {max_interval_s: 1}\nroutes:")
    write(tmp_path / "config.yaml", text)
    env = {**VALID_ENV, "SHOP_TOKEN": "Zq7-x", "ERP_SECRET": "erp-plain-TOPSECRET"}
    ran = run_cli("check-config", cwd=tmp_path, env=env)
    assert ran.code == 1
    assert ran.err.splitlines() == [
        "polling: max_interval_s must be at least queued_interval_s and processing_interval_s",
        "clients.shop.token: must be at least 8 characters",
        "channels.erp.secret: must be 'whsec_' followed by base64",
    ]
    for secret in env.values():
        assert secret not in ran.both


WINNER = "channels: {}\n"
LOSER = "not_a_section: 1\n"


@pytest.mark.parametrize(
    ("flag", "env_file", "cwd_file", "named"),
    [
        (WINNER, LOSER, LOSER, "flag.yaml"),
        (None, WINNER, LOSER, "env.yaml"),
        (None, None, WINNER, "config.yaml"),
    ],
    ids=["flag-beats-env", "env-beats-cwd", "cwd-default"],
)
def test_check_config_finds_file_by_flag_then_environment_then_cwd(
    tmp_path, flag, env_file, cwd_file, named
):
    args = ["check-config"]
    env = {}
    if flag is not None:
        write(tmp_path / "flag.yaml", flag)
        args += ["--config", "flag.yaml"]
    if env_file is not None:
        write(tmp_path / "env.yaml", env_file)
        env["BRIDGE_CONFIG"] = "env.yaml"
    write(tmp_path / "config.yaml", cwd_file)
    ran = run_cli(*args, cwd=tmp_path, env=env)
    assert ran.code == 0, ran.err
    assert ran.out.startswith(f"{named}: OK (")


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        (["--config", "nope.yaml"], {}, "nope.yaml"),
        ([], {"BRIDGE_CONFIG": "from-env.yaml"}, "from-env.yaml"),
        ([], {}, "config.yaml"),
    ],
)
def test_check_config_missing_file_is_one_clear_error(tmp_path, args, env, shown):
    ran = run_cli("check-config", *args, cwd=tmp_path, env=env)
    assert ran.code == 1
    assert ran.out == ""
    assert ran.err.splitlines() == [f"(file): cannot read {shown}: No such file or directory"]


SLACK_CHANNEL = "catalog: {type: slack, token: xoxb-CLI-TOPSECRET, channel: C0123456}"
EMAIL_CHANNEL = (
    "ops: {type: email, host: smtp.example.com, from: bridge@example.com, to: [ops@example.com],"
    " password: smtp-CLI-TOPSECRET}"
)


@pytest.mark.parametrize(
    ("channel", "name", "template", "problem"),
    [
        (
            SLACK_CHANNEL,
            "slack/message.txt.j2",
            "{{ job.status ",
            ":1: unexpected end of template",
        ),
        (
            EMAIL_CHANNEL,
            "email/subject.txt.j2",
            "[{{ job.id }}] {{ no_such_name }}\n",
            ": 'no_such_name' is undefined (line 1)",
        ),
        (
            SLACK_CHANNEL,
            "slack/item_failed.json.j2",
            '{"text": "{{ item.nope }}"}',
            ": 'dict object' has no attribute 'nope'",
        ),
    ],
    ids=["slack-syntax-error", "email-undefined-name", "slack-undefined-attribute"],
)
def test_check_config_broken_template_override_names_the_file(
    tmp_path, channel, name, template, problem
):
    overrides = tmp_path / "overrides"
    broken = write(overrides / name, template)
    write(tmp_path / "config.yaml", f"channels:\n  {channel}\ntemplates: {{dir: {overrides}}}\n")
    ran = run_cli("check-config", cwd=tmp_path)
    assert ran.code == 1
    assert ran.out == ""
    [line] = ran.err.splitlines()
    assert str(broken) in line
    assert problem in line
    assert "TOPSECRET" not in ran.both


def test_check_config_ignores_templates_of_channels_not_configured(tmp_path):
    overrides = tmp_path / "overrides"
    write(overrides / "email" / "subject.txt.j2", "{{ no_such_name }}\n")
    write(
        tmp_path / "config.yaml", f"channels:\n  {SLACK_CHANNEL}\ntemplates: {{dir: {overrides}}}\n"
    )
    ran = run_cli("check-config", cwd=tmp_path)
    assert ran.code == 0, ran.err


def test_check_config_templates_dir_must_exist(tmp_path):
    write(tmp_path / "config.yaml", f"templates: {{dir: {tmp_path / 'missing'}}}\n")
    ran = run_cli("check-config", cwd=tmp_path)
    assert ran.code == 1
    assert ran.err.splitlines() == [f"templates.dir: {tmp_path / 'missing'} is not a folder"]


# ----- send-test ------------------------------------------------------------------------------


def slack_config(tmp_path: Path, *, base_url: str) -> None:
    """A Slack channel whose token reaches the process only through $SLACK_TOKEN."""
    write(
        tmp_path / "config.yaml",
        f"""
        channels:
          catalog: {{type: slack, token: "${{SLACK_TOKEN}}", channel: C0123456, base_url: "{base_url}"}}
        """,
    )


async def test_send_test_slack_posts_and_prints_ok(tmp_path):
    standin = SlackStandin()
    async with serving(standin.app) as server:
        standin.url = server.url
        slack_config(tmp_path, base_url=standin.api_url)
        ran = await run_cli_async(
            "send-test", "catalog", cwd=tmp_path, env={"SLACK_TOKEN": standin.token}
        )
    assert ran.code == 0, ran.err
    assert ran.out.splitlines() == [
        "OK: sent a sample item.failed to slack channel 'catalog' (HTTP 200)"
    ]
    [message] = standin.top_level()
    assert message.channel == "C0123456"
    assert len(standin.replies(message.ts)) == 1  # the failed image, in the job's thread
    assert {c.token for c in standin.calls} == {standin.token}
    assert standin.token not in ran.both


async def test_send_test_slack_rejected_token_fails_plainly(tmp_path):
    standin = SlackStandin()
    wrong = "xoxb-wrong-CLI-TOPSECRET"
    async with serving(standin.app) as server:
        standin.url = server.url
        # Without the trailing slash: the config adds it, as slack-sdk needs.
        slack_config(tmp_path, base_url=standin.api_url.rstrip("/"))
        ran = await run_cli_async("send-test", "catalog", cwd=tmp_path, env={"SLACK_TOKEN": wrong})
    assert ran.code == 1
    assert ran.out == ""
    assert ran.err.splitlines() == [
        "FAILED: slack channel 'catalog': Slack answered invalid_auth (HTTP 200)"
    ]
    assert [c.answer for c in standin.calls] == ["invalid_auth"]
    assert wrong not in ran.both


def test_send_test_unknown_channel_fails_plainly(tmp_path):
    write(
        tmp_path / "config.yaml",
        f"""
        channels:
          erp: {{type: webhook, url: "https://erp.example.com/hooks", secret: "{SECRET_WHSEC}"}}
          {SLACK_CHANNEL}
        """,
    )
    ran = run_cli("send-test", "ecr", cwd=tmp_path)
    assert ran.code == 1
    assert ran.out == ""
    assert ran.err.splitlines() == ["unknown channel 'ecr' (channels: catalog, erp)"]
    assert SECRET_WHSEC not in ran.both
    assert "TOPSECRET" not in ran.both


def test_send_test_invalid_config_lists_problems(tmp_path):
    write(tmp_path / "config.yaml", "routes: [{channels: [erp]}]\n")
    ran = run_cli("send-test", "erp", cwd=tmp_path)
    assert ran.code == 1
    assert ran.err.splitlines() == ["routes[0].channels[0]: unknown channel 'erp'"]


@dataclass
class Receiver:
    """A webhook endpoint that verifies each request with the `standardwebhooks` package."""

    secret: str
    verified: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            standardwebhooks.Webhook(self.secret).verify(body, dict(request.headers))
        except Exception as exc:
            self.refused.append(f"{type(exc).__name__}: {exc}")
            return PlainTextResponse("bad signature", status_code=401)
        self.verified.append(json.loads(body))
        return PlainTextResponse("ok")

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


def webhook_config(tmp_path: Path, url: str) -> None:
    write(
        tmp_path / "config.yaml",
        f"""
        channels:
          erp: {{type: webhook, url: "{url}", secret: "${{ERP_SECRET}}"}}
        delivery: {{allowed_hosts: ["127.0.0.1"]}}
        """,
    )


async def test_send_test_webhook_is_signed_for_standardwebhooks(tmp_path):
    receiver = Receiver(SECRET_WHSEC)
    async with serving(receiver.app) as server:
        webhook_config(tmp_path, f"{server.url}/hook")
        ran = await run_cli_async(
            "send-test", "erp", cwd=tmp_path, env={"ERP_SECRET": SECRET_WHSEC}
        )
    assert ran.code == 0, ran.err
    assert ran.out.splitlines() == [
        "OK: sent a sample item.failed to webhook channel 'erp' (HTTP 200)"
    ]
    assert receiver.refused == []
    [event] = receiver.verified
    assert event["type"] == "item.failed"
    assert event["data"]["item"]["status"] == "failed"
    assert SECRET_WHSEC not in ran.both


async def test_send_test_webhook_refused_signature_fails_plainly(tmp_path):
    receiver = Receiver(OTHER_WHSEC)  # the receiver expects another secret
    async with serving(receiver.app) as server:
        webhook_config(tmp_path, f"{server.url}/hook")
        ran = await run_cli_async(
            "send-test", "erp", cwd=tmp_path, env={"ERP_SECRET": SECRET_WHSEC}
        )
    assert ran.code == 1
    assert ran.err.splitlines() == ["FAILED: webhook channel 'erp': HTTP 401"]
    assert len(receiver.refused) == 1
    assert SECRET_WHSEC not in ran.both


# ----- demo and simulator ---------------------------------------------------------------------


@pytest.mark.slow
def test_demo_runs_end_to_end_and_exits_zero(tmp_path):
    started = time.monotonic()
    ran = run_cli("demo", cwd=tmp_path, timeout=60)
    assert ran.code == 0, ran.both[-2000:]
    assert ran.out.splitlines()[-1] == "demo OK"
    assert time.monotonic() - started < 60
    assert list(tmp_path.iterdir()) == []  # SQLite went to a temporary folder, not the cwd
    summary = json.loads(ran.out.split("summary: ", 1)[1].rsplit("demo OK", 1)[0])
    signals = summary["upstream_signals"]  # the simulator's signed webhooks to the bridge
    assert signals["delivered"] > 0 and signals["not_delivered"] == 0
    assert 0 < signals["polled_soon"] <= signals["delivered"]
    assert 0 < signals["polls_brought_forward"] <= summary["upstream_polls"]


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], *, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the simulator exited before it listened"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {within_s} s")


def test_simulator_serves_the_upstream_api_on_the_given_port(tmp_path):
    port = free_port()
    key = "aigen_test_cli"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "simulator", "--port", str(port), "--key", key],
        cwd=tmp_path,
        env=_env(None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, proc, within_s=TIMEOUT_S)
        url = f"http://127.0.0.1:{port}/product-photo-jobs/{uuid.uuid4()}"
        with httpx.Client(timeout=10) as http:
            anonymous = http.get(url)
            wrong_key = http.get(url, headers={"Authorization": "Bearer aigen_test_other"})
            known = http.get(url, headers={"Authorization": f"Bearer {key}"})
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "invalid_api_key"
    assert wrong_key.status_code == 401
    assert known.status_code == 404  # a real key, and a job that does not exist
    assert set(known.json()["error"]) >= {"code", "message", "request_id"}


@pytest.mark.parametrize(
    ("url", "reason"),
    [("http://erp.example.com/hooks", "https"), ("https://10.0.0.1/hooks", "10.0.0.1")],
)
def test_cli_check_config_refuses_a_webhook_channel_every_send_would_refuse(tmp_path, url, reason):
    path = tmp_path / "config.yaml"
    path.write_text(
        "channels:\n"
        f'  erp: {{type: webhook, url: "{url}", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "check-config", "--config", str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("channels.erp.url: ") and reason in lines[0]
    assert "MfKQ9r8" not in done.stderr + done.stdout
