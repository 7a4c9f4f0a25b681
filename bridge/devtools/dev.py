"""run_dev(): the simulator and the bridge on 127.0.0.1 with fresh secrets, printed once, until a signal.

The committed config.yaml holds no secret, so it cannot run as it is; `photo-bridge dev` writes a
config of its own (mode 0600, in a temporary folder removed at exit) with a client token, a webhook
secret and a simulator API key generated for this run, and serves the bridge exactly as `serve` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from bridge.app import create_app
from bridge.config import Config, load_config
from bridge.delivery.signing import new_secret
from bridge.devtools.simulator import KeyLimits, SimulatorSettings, create_simulator

HOST = "127.0.0.1"
ACCOUNT = "main"
CLIENT = "shop"
OPERATOR = "ops"
POLLS_PER_HOUR = 3600  # one a second: a job's whole life shows up while you watch
START_WITHIN_S = 30.0


@dataclass(frozen=True)
class DevSecrets:
    """The credentials of one dev run; never written anywhere but the run's own config file."""

    client_token: str
    webhook_secret: str
    api_key: str
    operator_token: str | None

    @classmethod
    def generate(cls, *, operators: bool) -> DevSecrets:
        """Fresh random credentials; an operator token only if the config knows `operators`."""
        return cls(
            client_token=secrets.token_urlsafe(24),
            webhook_secret=new_secret(),
            api_key="aigen_test_" + secrets.token_hex(16),
            operator_token=secrets.token_urlsafe(24) if operators else None,
        )


def dev_config(*, creds: DevSecrets, port: int, sim_url: str, db_url: str) -> dict[str, Any]:
    """The dev run's configuration: loopback only, short poll intervals, webhooks to 127.0.0.1 allowed."""
    data: dict[str, Any] = {
        "server": {"host": HOST, "port": port, "public_url": f"http://{HOST}:{port}"},
        "storage": {"url": db_url},
        "upstream": {
            "base_url": sim_url,
            "timeout_s": 5,
            "accounts": {
                ACCOUNT: {
                    "api_key": creds.api_key,
                    "polls_per_hour": POLLS_PER_HOUR,
                    "max_concurrency": 2,
                }
            },
        },
        "polling": {"queued_interval_s": 2, "processing_interval_s": 1, "max_interval_s": 10},
        "clients": {
            CLIENT: {
                "token": creds.client_token,
                "accounts": [ACCOUNT],
                "webhook_secrets": [creds.webhook_secret],
            }
        },
        "delivery": {"allowed_hosts": [HOST, "localhost"]},
    }
    if creds.operator_token is not None:
        data["operators"] = {OPERATOR: {"token": creds.operator_token}}
    return data


def write_private(path: Path, data: dict[str, Any]) -> Path:
    """Write `data` as YAML readable by this user only (it holds the run's secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.safe_dump(data, out, sort_keys=False)
    return path


def banner(*, creds: DevSecrets, bridge_url: str, sim_url: str, config_file: Path) -> str:
    """What the run prints once: where things listen, every secret once, and a curl session."""
    job_id = uuid.uuid4()
    lines = [
        f"photo-bridge dev: bridge {bridge_url}, upstream simulator {sim_url} (Ctrl-C stops both)",
        f"config: {config_file} (removed at exit)",
        "Generated for this run and shown only now; paste into a shell:",
        f"  export BRIDGE={bridge_url} SIM={sim_url}",
        f"  export TOKEN={creds.client_token}   # clients.{CLIENT}.token, the bearer token",
        f"  export WEBHOOK_SECRET={creds.webhook_secret}   # verifies the webhooks to your receiver",
        f"  export AIGEN_API_KEY={creds.api_key}   # upstream.accounts.{ACCOUNT}.api_key",
    ]
    if creds.operator_token is not None:
        lines.append(f"  export OPS_TOKEN={creds.operator_token}   # operators.{OPERATOR}.token")
        lines.append(f"Console: {bridge_url}/console/ (sign in with $OPS_TOKEN)")
    auth = '-H "Authorization: Bearer $TOKEN"'
    lines += [
        "Try it (webhook_url may be http://127.0.0.1:... here):",
        f"""  curl -s -X POST $SIM/_sim/jobs -d '{{"total_items": 5, "job_id": "{job_id}"}}'""",
        f"  curl -s -X POST $BRIDGE/v1/watches {auth} -H 'Content-Type: application/json' \\",
        f"""       -d '{{"job_id": "{job_id}", "metadata": {{"order": "A-1"}}}}'""",
        f"  curl -s $BRIDGE/v1/watches/wat_... {auth}",
        f"  curl -s $BRIDGE/v1/watches/wat_.../events {auth}",
        "",
    ]
    return "\n".join(lines)


class DevError(Exception):
    """The dev run cannot start or stopped by itself; the message says why, without secrets."""


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: run_dev stops both servers itself, in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(port: int) -> socket.socket:
    """Bind before anything starts, so a port in use is one clear error with nothing to undo."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise DevError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
    return sock


@contextlib.asynccontextmanager
async def _serving(
    app: Any, sock: socket.socket, servers: list[uvicorn.Server], **options: Any
) -> AsyncIterator[asyncio.Task[None]]:
    """Serve `app` on `sock` for the block; on exit, drain it and wait until it has stopped."""
    server = _EmbeddedServer(uvicorn.Config(app, log_config=None, access_log=False, **options))
    servers.append(server)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(START_WITHIN_S):
            while not server.started:
                if task.done():
                    raise DevError("a server failed to start; see the log above")
                await asyncio.sleep(0.01)  # uvicorn offers no event for "started"
        yield task
    finally:
        server.should_exit = True
        await task


def _stop_on_signals(servers: list[uvicorn.Server]) -> asyncio.Event:
    """An event set by SIGINT or SIGTERM; a second signal stops waiting for in-flight work."""
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            for server in servers:
                server.force_exit = True
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stop


def _simulator(creds: DevSecrets) -> Any:
    limits = KeyLimits(
        polls_per_hour=POLLS_PER_HOUR, max_active_jobs=5, creations_per_hour=60, images_per_hour=600
    )
    return create_simulator(SimulatorSettings(keys={creds.api_key: limits}))


async def run_dev(*, port: int, sim_port: int, db: Path | None) -> int:
    """Serve until SIGINT or SIGTERM, then drain the bridge and stop the simulator; the exit code."""
    try:
        await _run(port=port, sim_port=sim_port, db=db)
    except DevError as exc:
        sys.stderr.write(f"photo-bridge dev: {exc}\n")
        return 1
    return 0


def _configure(
    folder: Path, *, creds: DevSecrets, port: int, sim_url: str, db: Path | None
) -> Path:
    data = dev_config(
        creds=creds,
        port=port,
        sim_url=sim_url,
        db_url="sqlite:///" + str((db or folder / "dev.db").resolve()),
    )
    return write_private(folder / "config.yaml", data)


async def _until_stopped(stop: asyncio.Event, servers: set[asyncio.Task[None]]) -> None:
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({waiter, *servers}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if waiter not in done:
        raise DevError("a server stopped by itself; see the log above")


async def _run(*, port: int, sim_port: int, db: Path | None) -> None:
    servers: list[uvicorn.Server] = []
    stop = _stop_on_signals(servers)
    creds = DevSecrets.generate(operators="operators" in Config.model_fields)
    with (
        tempfile.TemporaryDirectory(prefix="photo-bridge-dev-") as folder,
        _listen(sim_port) as sim_sock,
        _listen(port) as bridge_sock,
    ):
        bridge_url = f"http://{HOST}:{bridge_sock.getsockname()[1]}"
        sim_url = f"http://{HOST}:{sim_sock.getsockname()[1]}"
        config_file = _configure(
            Path(folder), creds=creds, port=bridge_sock.getsockname()[1], sim_url=sim_url, db=db
        )
        app = create_app(load_config(config_file, env={}))
        async with (
            _serving(_simulator(creds), sim_sock, servers) as sim_task,
            _serving(app, bridge_sock, servers, timeout_graceful_shutdown=30) as bridge_task,
        ):
            sys.stdout.write(
                banner(creds=creds, bridge_url=bridge_url, sim_url=sim_url, config_file=config_file)
            )
            sys.stdout.flush()
            await _until_stopped(stop, {sim_task, bridge_task})
