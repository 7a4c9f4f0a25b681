"""SlackWebhookChannel: a new Slack message per event, posted to an incoming-webhook URL (no edits)."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bridge.clock import utcnow
from bridge.delivery.channels import Message, SendError, SendResult
from bridge.delivery.channels.slack_blocks import render_pair
from bridge.delivery.failures import http_status_is_permanent
from bridge.outbound import parse_retry_after
from bridge.rendering import Renderer, template_context

log = logging.getLogger(__name__)


class SlackWebhookChannel:
    """Posts a new Slack message per event to an incoming-webhook URL (which cannot edit)."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        renderer: Renderer,
        http: httpx.AsyncClient,
        timeout_s: float = 10.0,
        public_url: str | None = None,
    ) -> None:
        self._name = name
        self._url = url  # a secret: it alone lets anyone post; never logged or quoted in errors
        self._renderer = renderer
        self._http = http
        self._timeout_s = timeout_s
        self._public_url = public_url

    async def send(self, message: Message) -> SendResult:
        """Post the event as one message; raise SendError unless Slack answered 2xx."""
        context = template_context(
            payload=message.payload, job=message.job, public_url=self._public_url
        )
        blocks, text = render_pair(self._renderer, "slack/event", context)
        body = {"text": text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}
        try:
            response = await self._http.post(
                self._url, json=body, timeout=httpx.Timeout(self._timeout_s), follow_redirects=False
            )
        except httpx.TimeoutException:
            raise SendError(f"timeout after {self._timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise SendError(f"connection error: {type(exc).__name__}") from None
        excerpt = response.text[:200]
        if 200 <= response.status_code < 300:
            log.info(
                "slack webhook posted", extra={"channel": self._name, "event_id": message.event_id}
            )
            return SendResult(status_code=response.status_code, response_excerpt=excerpt)
        raise SendError(
            f"Slack webhook answered HTTP {response.status_code}: {excerpt}",
            status_code=response.status_code,
            retry_after_s=slack_retry_after(response.headers.get("retry-after")),
            response_excerpt=excerpt,
            permanent=http_status_is_permanent(response.status_code, service="slack_webhook"),
        )


def slack_retry_after(value: Any) -> float | None:
    """Slack's Retry-After (it sends delay-seconds) in seconds, or None when absent or unusable."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return None if value is None else parse_retry_after(str(value), now=utcnow())
