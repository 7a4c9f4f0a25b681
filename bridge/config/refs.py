"""cross_reference_problems(raw): names that point at accounts, clients or channels that do not exist,
a bearer token shared by two clients or operators, and a channel named like a watch's own webhook.

It reads the raw (interpolated) YAML tree rather than the validated model, so that dangling names are
reported in the same run as type errors: the operator sees every problem at once.
"""

from __future__ import annotations

from typing import Any

from bridge.events.vocabulary import pattern_problem

# The destination name of a watch's own webhook (bridge.events.routing.WEBHOOK_URL, which imports
# the config, so it is spelled here again; a test keeps the two equal).
WEBHOOK_URL = "webhook_url"
SLACK_APP_PREFIX = "slack-app:"  # a Slack app subscription's destination: slack-app:<channel id>
DISCOVERY_CLIENT = "discovery"  # the client that owns the watches discovery makes


def _event_pattern_problem(pattern: Any) -> str | None:
    if not isinstance(pattern, str):
        return None  # the model reports the type
    return pattern_problem(pattern)


def _names(node: Any) -> set[str]:
    return {str(key) for key in node} if isinstance(node, dict) else set()


def _list(node: Any) -> list[Any]:
    return node if isinstance(node, list) else []


def _dangling(values: Any, known: set[str], path: str, kind: str) -> list[str]:
    return [
        f"{path}[{i}]: unknown {kind} {value!r}"
        for i, value in enumerate(_list(values))
        if isinstance(value, str) and value not in known
    ]


def _mapping(node: Any) -> dict[str, Any]:
    return {str(k): v for k, v in node.items()} if isinstance(node, dict) else {}


def token_clash_problems(raw: dict[str, Any]) -> list[str]:
    """One line per bearer token already held by another client or operator, naming both paths.

    A shared token would make one caller the other: a client with an operator's token reads every
    tenant's watches. The token itself is never shown.
    """
    holders: dict[str, str] = {}
    problems = []
    for section in ("clients", "operators"):
        for name, entry in _mapping(raw.get(section)).items():
            token = entry.get("token") if isinstance(entry, dict) else None
            if not isinstance(token, str) or not token:
                continue  # the model reports a missing or mistyped token
            path = f"{section}.{name}.token"
            if token in holders:
                problems.append(f"{path}: the same token as {holders[token]}; give each its own")
            else:
                holders[token] = path
    return problems


def cross_reference_problems(raw: dict[str, Any]) -> list[str]:
    """Return one line per dangling reference, each naming its YAML path."""
    upstream = raw.get("upstream")
    accounts = _names(upstream.get("accounts") if isinstance(upstream, dict) else None)
    found = raw.get("clients")
    clients: dict[str, Any] = found if isinstance(found, dict) else {}
    channels = _names(raw.get("channels"))
    problems: list[str] = token_clash_problems(raw)
    if WEBHOOK_URL in channels:
        problems.append(
            f"channels.{WEBHOOK_URL}: the name is reserved for each watch's own webhook_url"
        )
    problems += [
        f"channels.{name}: names starting '{SLACK_APP_PREFIX}' are reserved for the Slack app's channels"
        for name in sorted(channels)
        if name.startswith(SLACK_APP_PREFIX)
    ]
    problems += [
        f"clients.{name}: the name is reserved for the jobs discovery watches"
        for name in sorted(clients)
        if name == DISCOVERY_CLIENT
    ]
    for name, client in clients.items():
        if isinstance(client, dict):
            problems += _dangling(
                client.get("accounts"), accounts, f"clients.{name}.accounts", "account"
            )
    for r, route in enumerate(_list(raw.get("routes"))):
        if not isinstance(route, dict):
            continue
        for i, pattern in enumerate(_list(route.get("events"))):
            problem = _event_pattern_problem(pattern)
            if problem:
                problems.append(f"routes[{r}].events[{i}]: {problem}")
        problems += _dangling(route.get("accounts"), accounts, f"routes[{r}].accounts", "account")
        problems += _dangling(
            route.get("clients"),
            _names(clients) | {DISCOVERY_CLIENT},  # a route may take the discovered jobs
            f"routes[{r}].clients",
            "client",
        )
        problems += _dangling(route.get("channels"), channels, f"routes[{r}].channels", "channel")
    return problems
