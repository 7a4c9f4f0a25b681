"""Command-line options of `photo-bridge simulator`, turned into SimulatorSettings."""

from __future__ import annotations

import argparse

from bridge.devtools.simulator.settings import DEFAULT_KEY, KeyLimits, SimulatorSettings

_LIMITS = KeyLimits()
_SETTINGS = SimulatorSettings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to `parser` (defaults mirror SimulatorSettings)."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8090, help="port to listen on")
    parser.add_argument(
        "--key",
        action="append",
        dest="keys",
        metavar="API_KEY",
        help=f"an accepted API key, repeatable (default {DEFAULT_KEY})",
    )
    parser.add_argument("--seconds-per-item", type=float, default=_SETTINGS.seconds_per_item)
    parser.add_argument("--queue-delay", type=float, default=_SETTINGS.queue_delay_s)
    parser.add_argument("--failure-rate", type=float, default=_SETTINGS.failure_rate)
    parser.add_argument("--polls-per-hour", type=int, default=_LIMITS.polls_per_hour)
    parser.add_argument("--max-active-jobs", type=int, default=_LIMITS.max_active_jobs)
    parser.add_argument("--seed", type=int, default=_SETTINGS.seed)
    parser.add_argument(
        "--no-limits", action="store_true", help="never answer 429 for rate or concurrency"
    )


def settings_from_args(args: argparse.Namespace) -> SimulatorSettings:
    """Build SimulatorSettings from options parsed with `add_arguments`."""
    limits = KeyLimits(polls_per_hour=args.polls_per_hour, max_active_jobs=args.max_active_jobs)
    keys: list[str] = args.keys or [DEFAULT_KEY]
    return SimulatorSettings(
        keys=dict.fromkeys(keys, limits),
        queue_delay_s=args.queue_delay,
        seconds_per_item=args.seconds_per_item,
        failure_rate=args.failure_rate,
        seed=args.seed,
        enforce_limits=not args.no_limits,
    )
