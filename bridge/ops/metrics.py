"""Metrics: one Prometheus registry per bridge, so tests and replicas never share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The counters the bridge exports on GET /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.api_requests = Counter(
            "bridge_api_requests",
            "HTTP API requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.polls = Counter(
            "bridge_upstream_polls",
            "Upstream polls by account and outcome",
            ["account", "outcome"],
            registry=self.registry,
        )
        self.signals = Counter(
            "bridge_upstream_signals",
            "Verified upstream signals by account; polled_soon=true brought a watched job's poll forward",
            ["account", "polled_soon"],
            registry=self.registry,
        )
        self.poll_lag = Histogram(
            "bridge_poll_lag_seconds",
            "Time from a job's due time to its poll",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.events = Counter(
            "bridge_events", "Events recorded by type", ["type"], registry=self.registry
        )
        self.deliveries = Counter(
            "bridge_delivery_attempts",
            "Delivery attempts by destination kind and result",
            ["kind", "result"],
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "bridge_delivery_seconds",
            "Time from an event's commit to its successful delivery",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
            registry=self.registry,
        )
        self.budget_remaining = Gauge(
            "bridge_poll_budget_remaining",
            "Polls the upstream last said are left (X-RateLimit-Remaining), by account",
            ["account"],
            registry=self.registry,
        )
        self.discovered = Counter(
            "bridge_discovered_jobs",
            "Jobs discovery began to watch, by account (found by listing, or signalled by the upstream)",
            ["account"],
            registry=self.registry,
        )
