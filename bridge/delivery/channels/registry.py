"""ChannelRegistry: the channel object for each destination of a delivery, built from the config.

Named channels are built once and reused, so per-channel state (Slack pacing, say) lives as long
as the bridge. A watch's own `webhook_url` gets a WebhookChannel kept by URL and secrets, up to
WATCH_HOOKS_KEPT of them (there can be one URL per watch): it holds no state between sends.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from bridge.clock import utcnow
from bridge.config import (
    Config,
    EmailChannelConfig,
    SlackChannelConfig,
    SlackWebhookChannelConfig,
    WebhookChannelConfig,
)
from bridge.delivery.channels import Channel, ImportFailures, StateStore
from bridge.delivery.channels.webhook import WebhookChannel
from bridge.delivery.urlguard import Resolver
from bridge.events.routing import WEBHOOK_URL
from bridge.events.subscriptions import SLACK_APP_PREFIX
from bridge.outbound import USER_AGENT

if TYPE_CHECKING:
    from bridge.rendering import Renderer

WATCH_HOOKS_KEPT = 4096

# A subscribed channel's import message is edited as often as a configured Slack channel's by default.
_DEFAULT_EDIT_INTERVAL_S: float = SlackChannelConfig.model_fields["edit_interval_s"].default


class DestinationError(Exception):
    """A delivery's destination cannot be built (e.g. a channel no longer in the config)."""


class ChannelRegistry:
    """Hands out the channel for a destination: `"webhook_url"`, a name from `config.channels`, or
    `"slack-app:<channel id>"` (a channel subscribed through the Slack app, posted with its token)."""

    def __init__(
        self,
        *,
        config: Config,
        http: httpx.AsyncClient,
        state: StateStore,
        renderer: Renderer | None,
        resolve: Resolver | None = None,
        now: Callable[[], datetime] = utcnow,
        failures: ImportFailures | None = None,
    ) -> None:
        self._config = config
        self._failures = failures  # imports' failed images, for Slack replies and email CSVs
        self._http = http
        self._state = state
        self._renderer = renderer
        self._resolve = resolve
        self._now = now
        self._user_agent = USER_AGENT
        self._named: dict[str, Channel] = {}
        # Watches' own webhooks, by URL and secrets: building one per send (checking each secret,
        # the URL's host) cost more than signing. Bounded: emptied when it reaches its size.
        self._hooks: dict[tuple[str, tuple[str, ...]], WebhookChannel] = {}

    def kind(self, destination: str) -> str:
        """The destination's channel type (webhook, slack, ...), a metrics label."""
        if destination == WEBHOOK_URL:
            return "webhook"
        if destination.startswith(SLACK_APP_PREFIX):
            return "slack"
        settings = self._config.channels.get(destination)
        return settings.type if settings is not None else "unknown"

    def for_destination(self, destination: str, *, webhook_url: str | None, client: str) -> Channel:
        """The channel that sends to `destination`; raises DestinationError when there is none."""
        if destination == WEBHOOK_URL:
            return self._watch_webhook(webhook_url, client)
        channel = self._named.get(destination)
        if channel is None:
            channel = self._named[destination] = self._build(destination)
        return channel

    def _watch_webhook(self, url: str | None, client: str) -> Channel:
        if not url:
            raise DestinationError("the watch has no webhook_url")
        settings = self._config.clients.get(client)
        if settings is None:
            raise DestinationError(f"client {client!r} is no longer configured")
        if not settings.webhook_secrets:
            raise DestinationError(f"client {client!r} has no webhook_secrets to sign with")
        key = (url, tuple(s.get_secret_value() for s in settings.webhook_secrets))
        channel = self._hooks.get(key)
        if channel is None:
            if len(self._hooks) >= WATCH_HOOKS_KEPT:
                self._hooks.clear()
            channel = self._hooks[key] = self._webhook(url, list(key[1]))
        return channel

    def _webhook(self, url: str, secrets: list[str]) -> WebhookChannel:
        return WebhookChannel(
            url=url,
            secrets=secrets,
            client=self._http,
            allowed_hosts=self._config.delivery.allowed_hosts,
            timeout_s=self._config.delivery.timeout_s,
            user_agent=self._user_agent,
            resolve=self._resolve,
            now=self._now,
        )

    def _build(self, name: str) -> Channel:
        if name.startswith(SLACK_APP_PREFIX):
            return self._slack_app(name)
        settings = self._config.channels.get(name)
        if settings is None:
            raise DestinationError(f"channel {name!r} is no longer configured")
        if isinstance(settings, WebhookChannelConfig):
            return self._webhook(
                settings.url, [s.get_secret_value() for s in settings.signing_secrets]
            )
        if self._renderer is None:
            raise DestinationError(f"channel {name!r} needs templates, and no renderer was given")
        if isinstance(settings, SlackChannelConfig):
            return self._slack(name, settings, self._renderer)
        if isinstance(settings, SlackWebhookChannelConfig):
            return self._slack_webhook(name, settings, self._renderer)
        return self._email(name, settings, self._renderer)

    # Slack and email are imported when first needed: slack-sdk and aiosmtplib load only if used.

    def _slack(self, name: str, settings: SlackChannelConfig, renderer: Renderer) -> Channel:
        token = settings.token.get_secret_value()
        return self._slack_channel(
            name=name,
            token=token,
            channel=settings.channel,
            base_url=settings.base_url,
            edit_interval_s=settings.edit_interval_s,
            renderer=renderer,
            # The buttons reach the Slack app only on messages its own bot posted.
            buttons=self._app_token() == token,
        )

    def _slack_app(self, name: str) -> Channel:
        """A subscribed channel no configured channel posts to, reached with the app's token."""
        app = self._config.slack_app
        channel_id = name.removeprefix(SLACK_APP_PREFIX)
        if app is None:
            raise DestinationError(
                f"{name!r} is a Slack app subscription, and slack_app is not configured"
            )
        if not channel_id:
            raise DestinationError(f"{name!r} names no Slack channel")
        if self._renderer is None:
            raise DestinationError(f"channel {name!r} needs templates, and no renderer was given")
        return self._slack_channel(
            name=name,
            token=app.token.get_secret_value(),
            channel=channel_id,
            base_url=app.base_url,
            edit_interval_s=_DEFAULT_EDIT_INTERVAL_S,
            renderer=self._renderer,
            buttons=True,
        )

    def _app_token(self) -> str | None:
        app = self._config.slack_app
        return app.token.get_secret_value() if app is not None else None

    def _slack_channel(
        self,
        *,
        name: str,
        token: str,
        channel: str,
        base_url: str | None,
        edit_interval_s: float,
        renderer: Renderer,
        buttons: bool,
    ) -> Channel:
        from bridge.delivery.channels.slack import SlackChannel

        return SlackChannel(
            name=name,
            token=token,
            channel=channel,
            renderer=renderer,
            state=self._state,
            public_url=self._config.server.base_url,
            base_url=base_url,
            timeout_s=self._config.delivery.timeout_s,
            edit_interval_s=edit_interval_s,
            failures=self._failures,
            now=self._now,
            buttons=buttons,
        )

    def _slack_webhook(
        self, name: str, settings: SlackWebhookChannelConfig, renderer: Renderer
    ) -> Channel:
        from bridge.delivery.channels.slack_webhook import SlackWebhookChannel

        return SlackWebhookChannel(
            name=name,
            url=settings.url.get_secret_value(),
            renderer=renderer,
            http=self._http,
            timeout_s=self._config.delivery.timeout_s,
            public_url=self._config.server.base_url,
        )

    def _email(self, name: str, settings: EmailChannelConfig, renderer: Renderer) -> Channel:
        from bridge.delivery.channels.email import EmailChannel

        password = settings.password.get_secret_value() if settings.password else None
        return EmailChannel(
            name=name,
            host=settings.host,
            port=settings.port,
            sender=settings.from_,
            to=list(settings.to),
            renderer=renderer,
            mode=settings.mode,
            starttls=settings.starttls,
            use_tls=settings.tls,
            username=settings.username,
            password=password,
            timeout_s=self._config.delivery.timeout_s,
            state=self._state,
            public_url=self._config.server.base_url,
            failures=self._failures,
            now=self._now,
        )

    async def aclose(self) -> None:
        """Close the channels that hold connections of their own (those with an `aclose`)."""
        named, self._named = self._named, {}
        for channel in named.values():
            close = getattr(channel, "aclose", None)
            if close is not None:
                await close()
