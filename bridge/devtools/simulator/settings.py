"""How the upstream simulator behaves: known keys, their limits, timings and failures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bridge.clock import utcnow

DEFAULT_KEY = "aigen_test_simulator"


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """The published per-key limits of the upstream API."""

    polls_per_hour: int = 120
    max_active_jobs: int = 1
    creations_per_hour: int = 5
    images_per_hour: int = 25


def _default_keys() -> dict[str, KeyLimits]:
    return {DEFAULT_KEY: KeyLimits()}


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Everything that shapes the simulator's answers; progress follows the injected `now`."""

    keys: dict[str, KeyLimits] = field(default_factory=_default_keys)
    accounts: dict[str, list[str]] = field(default_factory=dict)
    max_active_jobs_per_account: int = 2
    queue_delay_s: float = 1.0
    seconds_per_item: float = 2.0
    failure_rate: float = 0.1
    seed: int = 0
    enforce_limits: bool = True
    webhook_interval_s: float = 0.2  # how often jobs with a webhook_url are checked for news
    webhook_timeout_s: float = 5.0  # each webhook POST, connect to response
    now: Callable[[], datetime] = utcnow
