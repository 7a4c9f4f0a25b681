"""photo-bridge serve | check-config | demo | dev | simulator | send-test: the console script."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bridge.config import Config, ConfigError, config_path, load_config

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _load(path_arg: str | None) -> Config | None:
    path = config_path(path_arg)
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def _draining_server_class() -> type[Any]:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn, except that SIGTERM/SIGINT end in exit code 0 once in-flight work is drained.

        uvicorn re-raises the signal after its graceful shutdown, so the process would die by
        SIGTERM; the contract says a drained bridge exits 0.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return DrainingServer


def _storage_problem(config: Config) -> str | None:
    """Why a SQLite database could not be written (naming the path), before anything starts."""
    from bridge.store.engine import sqlite_fault, sqlite_path

    path = sqlite_path(config.storage.url)
    fault = sqlite_fault(path) if path is not None else None
    return str(fault) if fault is not None else None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bridge.app import create_app
    from bridge.ops.heap import settle_heap
    from bridge.ops.logs import configure_logging

    config = _load(args.config)
    if config is None:
        return 1
    if (problem := _storage_problem(config)) is not None:
        print(f"storage.url: {problem}", file=sys.stderr)
        return 1
    configure_logging(os.environ.get("BRIDGE_LOG_LEVEL", "INFO"))
    app = create_app(config)
    settle_heap()  # everything is imported and built: what lives as long as the process
    server = _draining_server_class()(
        uvicorn.Config(
            app,
            host=config.server.host,
            port=config.server.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    )
    server.run()
    return 0 if server.started else 1


def _check_config(args: argparse.Namespace) -> int:
    from bridge.config.checks import channel_problems, template_problems

    config = _load(args.config)
    if config is None:
        return 1
    problems = channel_problems(config) + template_problems(config)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(
        f"{config_path(args.config)}: OK ({len(config.upstream.accounts)} accounts, "
        f"{len(config.clients)} clients, {len(config.channels)} channels, {len(config.routes)} routes)"
    )
    if config.slack_app is not None:
        teams = len(config.slack_app.allowed_teams)
        allowed = f"{teams} allowed teams" if teams else "any team signed with its signing secret"
        print(f"slack_app: configured ({allowed})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.import_:
        from bridge.devtools.demo_import import run_import_demo

        return asyncio.run(run_import_demo(jobs=args.jobs, items=min(args.items, 5)))
    from bridge.devtools.demo import run_demo

    return asyncio.run(run_demo(items=args.items, seconds_per_item=args.seconds_per_item))


def _dev(args: argparse.Namespace) -> int:
    from bridge.devtools.dev import run_dev
    from bridge.ops.logs import configure_logging

    configure_logging(os.environ.get("BRIDGE_LOG_LEVEL", "INFO"))
    return asyncio.run(run_dev(port=args.port, sim_port=args.sim_port, db=args.db))


def _simulator(args: argparse.Namespace) -> int:
    import uvicorn

    from bridge.devtools.simulator import create_simulator, settings_from_args

    uvicorn.run(create_simulator(settings_from_args(args)), host=args.host, port=args.port)
    return 0


def _send_test(args: argparse.Namespace) -> int:
    from bridge.devtools.sendtest import send_test

    config = _load(args.config)
    if config is None:
        return 1
    if (args.channel is None) == (args.slack_app_channel is None):
        print("send-test: name one channel, or --slack-app-channel CHANNEL_ID", file=sys.stderr)
        return 2
    return asyncio.run(send_test(config, args.channel, slack_app_channel=args.slack_app_channel))


def parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per job the bridge does."""
    from bridge.devtools.simulator import add_arguments

    top = argparse.ArgumentParser(prog="photo-bridge", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("serve", _serve, "run the HTTP API and the scheduler"),
        ("check-config", _check_config, "check a config file; exit 1 listing every problem"),
        ("send-test", _send_test, "send a sample notification to one channel"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "--config", help="config file (default $BRIDGE_CONFIG, then ./config.yaml)"
        )
        cmd.set_defaults(func=func)
        if name == "send-test":
            cmd.add_argument("channel", nargs="?", help="a channel name from the config")
            cmd.add_argument(
                "--slack-app-channel",
                metavar="CHANNEL_ID",
                help="instead, a Slack channel id (C0123...) posted to with slack_app's token",
            )
    demo = sub.add_parser("demo", help="run the whole bridge on embedded defaults and exit")
    demo.add_argument("--items", type=int, default=20, choices=range(1, 21), metavar="1..20")
    demo.add_argument("--seconds-per-item", type=float, default=0.4)
    demo.add_argument(
        "--import",
        dest="import_",
        action="store_true",
        help="run a catalog import of a few jobs instead, told as one story",
    )
    demo.add_argument("--jobs", type=int, default=4, choices=range(1, 11), metavar="1..10")
    demo.set_defaults(func=_demo)
    dev = sub.add_parser(
        "dev", help="run the simulator and the bridge on 127.0.0.1 with fresh secrets"
    )
    dev.add_argument("--port", type=int, default=8080, help="the bridge's port (0: any free one)")
    dev.add_argument("--sim-port", type=int, default=8090, help="the simulator's port")
    dev.add_argument(
        "--db", type=Path, help="SQLite file kept between runs (default: a temporary one)"
    )
    dev.set_defaults(func=_dev)
    simulator = sub.add_parser("simulator", help="serve a stand-in of the AI Gen Studio API")
    add_arguments(simulator)
    simulator.set_defaults(func=_simulator)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the process exit code."""
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
