"""Services: what a running bridge shares between the API, the poller and delivery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bridge.clock import Clock, utcnow
from bridge.config import Config
from bridge.ops.metrics import Metrics
from bridge.store import Store

Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass
class Services:
    """The bridge's shared parts, reached from handlers as `request.app.state.services`."""

    config: Config
    store: Store
    now: Clock = utcnow
    metrics: Metrics = field(default_factory=Metrics)
    resolve: Resolver | None = None  # DNS for the unsafe-URL guard; None means the system resolver
    scheduler_running: Callable[[], bool] = lambda: False
