"""The committed config.yaml holds no secret, and `photo-bridge dev` runs the bridge by hand without one.

Every process gets a clean environment (PATH and PYTHONPATH only), so the developer's own variables
cannot leak in, and every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "config.yaml"
TIMEOUT_S = 30.0
SECRETS_ENV = {
    "AIGEN_API_KEY": "aigen_live_DEVCFG_TOPSECRET",
    "SHOP_TOKEN": "shop-token-DEVCFG-TOPSECRET",
    "SHOP_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
MISSING = re.compile(r"^(?P<path>[\w.\[\]-]+): environment variable (?P<name>\w+) is not set$")
REQUIRED_VAR = re.compile(r"\$\{(\w+)\}")  # ${VAR} without a default


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **(extra or {})}


def _check_committed(
    tmp_path: Path, env: dict[str, str] | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "check-config", "--config", str(COMMITTED)],
        cwd=tmp_path, env=_env(env), capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip


# ----- the committed config.yaml ----------------------------------------------------------------


def test_committed_config_without_its_variables_names_each_one(tmp_path):
    ran = _check_committed(tmp_path, None)
    assert ran.returncode == 1
    assert ran.stdout == ""
    found = {}
    for line in ran.stderr.splitlines():
        match = MISSING.match(line)
        assert match, f"not a missing-variable line: {line!r}"
        found[match["path"]] = match["name"]
    assert (
        found.items()
        >= {
            "upstream.accounts.main.api_key": "AIGEN_API_KEY",
            "clients.shop.token": "SHOP_TOKEN",
            "clients.shop.webhook_secrets[0]": "SHOP_WEBHOOK_SECRET",
        }.items()
    )
    # One line per ${VAR} the file uses outside its comments, nothing else (no "too short" echo).
    code = [line.split("#", 1)[0] for line in COMMITTED.read_text().splitlines()]
    assert sorted(found.values()) == sorted(REQUIRED_VAR.findall("\n".join(code)))


def test_committed_config_with_its_variables_set_is_ok(tmp_path):
    ran = _check_committed(tmp_path, SECRETS_ENV)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith(f"{COMMITTED}: OK (1 accounts, 1 clients,")
    for secret in SECRETS_ENV.values():
        assert secret not in ran.stdout + ran.stderr


# ----- photo-bridge dev -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Banner:
    text: str
    bridge: str
    sim: str
    token: str
    webhook_secret: str
    api_key: str
    config_file: Path


def _exported(text: str, name: str) -> str:
    match = re.search(rf"\b{name}=(\S+)", text)
    assert match, f"{name} is not in the banner:\n{text}"
    return match[1]


async def _read_banner(proc: asyncio.subprocess.Process) -> Banner:
    """Read stdout until the banner's last curl line (the one listing a watch's events)."""
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(TIMEOUT_S):
        while not (lines and "/events" in lines[-1]):
            line = await proc.stdout.readline()
            assert line, "photo-bridge dev ended before it printed its banner"
            lines.append(line.decode())
    text = "".join(lines)
    config_file = re.search(r"^config: (\S+)", text, re.MULTILINE)
    assert config_file
    return Banner(
        text,
        bridge=_exported(text, "BRIDGE"),
        sim=_exported(text, "SIM"),
        token=_exported(text, "TOKEN"),
        webhook_secret=_exported(text, "WEBHOOK_SECRET"),
        api_key=_exported(text, "AIGEN_API_KEY"),
        config_file=Path(config_file[1]),
    )


async def _first_poll(api: httpx.AsyncClient, watch_id: str) -> dict[str, object]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        watch: dict[str, object] = (await api.get(f"/v1/watches/{watch_id}")).json()["watch"]
        if watch["job"] is not None:
            return watch
        await asyncio.sleep(0.1)
    raise TimeoutError(f"watch {watch_id} was not polled within {TIMEOUT_S} s")


async def _start_dev(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    """Start `photo-bridge dev`; its logs go to a file, so a full pipe can never stall it."""
    with (tmp_path / "stderr.log").open("ab") as logs:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge.cli", "dev", *args,
            cwd=tmp_path, env=_env(), stdout=asyncio.subprocess.PIPE, stderr=logs,
        )  # fmt: skip


async def _wait_exit(proc: asyncio.subprocess.Process) -> int:
    try:
        async with asyncio.timeout(TIMEOUT_S):
            return await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_dev_serves_the_api_with_the_printed_token_until_a_signal(tmp_path, sig):
    port, sim_port = _free_port(), _free_port()
    proc = await _start_dev(tmp_path, "--port", str(port), "--sim-port", str(sim_port))
    try:
        banner = await _read_banner(proc)
        assert (banner.bridge, banner.sim) == (
            f"http://127.0.0.1:{port}",
            f"http://127.0.0.1:{sim_port}",
        )
        assert banner.config_file.stat().st_mode & 0o777 == 0o600
        async with (
            httpx.AsyncClient(base_url=banner.sim, timeout=10) as sim,
            httpx.AsyncClient(
                base_url=banner.bridge,
                headers={"Authorization": f"Bearer {banner.token}"},
                timeout=10,
            ) as api,
        ):
            job = await sim.post("/_sim/jobs", json={"total_items": 3})
            assert job.status_code == 201, job.text
            created = await api.post("/v1/watches", json={"job_id": job.json()["job_id"]})
            assert created.status_code == 201, created.text
            watch = await _first_poll(api, created.json()["watch"]["id"])
            assert watch["account"] == "main"
            wrong = await api.get("/v1/watches", headers={"Authorization": "Bearer nope-nope-nope"})
            assert wrong.status_code == 401
        proc.send_signal(sig)
        assert await _wait_exit(proc) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert not banner.config_file.parent.exists()  # the secrets go with the run
    assert list(tmp_path.iterdir()) == [tmp_path / "stderr.log"]  # nothing left in the cwd
    logs = (tmp_path / "stderr.log").read_text()
    for secret in (banner.token, banner.webhook_secret, banner.api_key):
        assert banner.text.count(secret) == 1  # printed once ...
        assert secret not in logs  # ... and never logged


async def test_dev_generates_new_secrets_every_run(tmp_path):
    seen = []
    for _ in range(2):
        proc = await _start_dev(tmp_path, "--port", "0", "--sim-port", "0")
        try:
            seen.append(await _read_banner(proc))
            proc.send_signal(signal.SIGTERM)
            assert await _wait_exit(proc) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    first, second = seen
    assert first.token != second.token
    assert first.webhook_secret != second.webhook_secret
    assert first.api_key != second.api_key
    assert first.api_key.startswith("aigen_test_")


def test_dev_port_in_use_fails_plainly(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ran = subprocess.run(
            [sys.executable, "-m", "bridge.cli", "dev", "--port", str(port), "--sim-port", "0"],
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S,
            check=False,
        )  # fmt: skip
    assert ran.returncode == 1
    assert ran.stdout == ""  # no secret is shown for a run that never started
    assert ran.stderr.splitlines()[-1] == (
        f"photo-bridge dev: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
