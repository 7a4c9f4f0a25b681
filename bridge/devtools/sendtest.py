"""send_test(config, name): send one sample notification to a channel and say plainly how it went."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import httpx

from bridge.config import Config, EmailChannelConfig
from bridge.delivery.channels import Message, SendError
from bridge.delivery.channels.registry import ChannelRegistry, DestinationError
from bridge.events.subscriptions import slack_app_destination
from bridge.ids import new_id
from bridge.rendering import Renderer, TemplateProblem
from bridge.rendering.samples import sample_event, sample_job


class _Scratch:
    """Channel state for a test send: kept in memory, so real jobs' threads are left alone."""

    def __init__(self) -> None:
        self._values: dict[str, dict[str, Any]] = {}

    async def get_state(self, key: str) -> dict[str, Any] | None:
        return self._values.get(key)

    async def put_state(self, key: str, value: dict[str, Any]) -> None:
        self._values[key] = value

    async def claim_state(self, key: str, value: dict[str, Any]) -> dict[str, Any] | None:
        held = self._values.get(key)
        if held is None:
            self._values[key] = value
        return held


def _destination(
    config: Config, name: str | None, slack_app_channel: str | None
) -> tuple[str, str] | None:
    """(destination, how to name it) for a configured channel or a Slack app channel; None after
    saying why there is none."""
    if slack_app_channel is not None:
        if config.slack_app is None:
            print(
                "slack_app is not configured: there is no Slack app token to post with",
                file=sys.stderr,
            )
            return None
        if not slack_app_channel.strip():
            print("--slack-app-channel needs a Slack channel id such as C0123456", file=sys.stderr)
            return None
        return slack_app_destination(
            slack_app_channel.strip()
        ), f"Slack app channel {slack_app_channel.strip()!r}"
    channel_config = config.channels.get(name or "")
    if channel_config is None:
        known = ", ".join(sorted(config.channels)) or "none configured"
        print(f"unknown channel {name!r} (channels: {known})", file=sys.stderr)
        return None
    return name or "", f"{channel_config.type} channel {name!r}"


async def send_test(
    config: Config, name: str | None, *, slack_app_channel: str | None = None
) -> int:
    """Send a sample event to channel `name`, or with the Slack app's token to the Slack channel
    `slack_app_channel`; print the outcome; return the exit code."""
    found = _destination(config, name, slack_app_channel)
    if found is None:
        return 1
    destination, label = found
    channel_config = config.channels.get(destination)
    summary = isinstance(channel_config, EmailChannelConfig) and channel_config.mode == "summary"
    payload = sample_event("job.partially_completed" if summary else "item.failed")
    try:
        renderer = Renderer(override_dir=config.templates.dir)
    except TemplateProblem as exc:
        print(f"templates are broken: {exc}", file=sys.stderr)
        return 1
    message = Message(
        delivery_id=new_id("dlv"),
        event_id=payload["data"]["event_id"],
        event_type=payload["type"],
        timestamp=datetime.now(UTC),
        payload=payload,
        job=sample_job(),
    )
    async with httpx.AsyncClient() as http:
        registry = ChannelRegistry(config=config, http=http, state=_Scratch(), renderer=renderer)
        try:
            channel = registry.for_destination(destination, webhook_url=None, client="send-test")
            result = await channel.send(message)
        except (DestinationError, SendError) as exc:
            code = getattr(exc, "status_code", None)
            said = f" (HTTP {code})" if code and f"HTTP {code}" not in str(exc) else ""
            print(f"FAILED: {label}: {exc}{said}", file=sys.stderr)
            return 1
        finally:
            await registry.aclose()
    status = f" (HTTP {result.status_code})" if result.status_code else ""
    print(f"OK: sent a sample {payload['type']} to {label}{status}")
    return 0
