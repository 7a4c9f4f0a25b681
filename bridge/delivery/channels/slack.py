"""Slack: one message per job and channel, edited in place as the job moves; failures in its thread.

An import's jobs and events are told in one message per import (slack_import.py).
`SlackChannel` speaks the Web API with slack-sdk's AsyncWebClient (a bot token); the message's
channel id and `ts` live in the StateStore, so after a restart the bridge edits the same message.
`SlackWebhookChannel` (slack_webhook.py) is the simpler incoming-webhook variant. Both make exactly
one attempt per send; retry policy lives in `bridge.delivery.deliverer`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bridge.clock import utcnow
from bridge.delivery.channels import ImportFailures, Message, SendResult, StateStore
from bridge.delivery.channels.slack_blocks import render_pair
from bridge.delivery.channels.slack_import import SlackImportMessages
from bridge.delivery.channels.slack_pacer import Pacer
from bridge.delivery.channels.slack_state import (
    SlackSendError,
    claim_first_post,
    read_state,
    write_state,
)
from bridge.delivery.channels.slack_webhook import slack_retry_after
from bridge.delivery.failures import slack_error_is_permanent
from bridge.rendering import (
    SLACK_BROADCAST_EVENTS,
    Renderer,
    template_context,
)

log = logging.getLogger(__name__)


class SlackChannel:
    """Posts one message per job at its first routed event and edits it in place after that."""

    def __init__(
        self,
        *,
        name: str,
        token: str,
        channel: str,
        renderer: Renderer,
        state: StateStore,
        public_url: str,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        min_interval_s: float = 1.0,
        client: AsyncWebClient | None = None,
        pacer: Pacer | None = None,
        edit_interval_s: float = 10.0,
        failures: ImportFailures | None = None,
        now: Callable[[], datetime] = utcnow,
        buttons: bool = False,
    ) -> None:
        self._name = name
        self._buttons = buttons  # "Show failures" and "Mute", for the Slack app to answer
        self._channel = channel
        self._renderer = renderer
        self._state = state
        self._public_url = public_url
        self._timeout_s = timeout_s
        self._client = client or AsyncWebClient(
            token=token,
            base_url=base_url or AsyncWebClient.BASE_URL,
            timeout=max(1, math.ceil(timeout_s)),
            retry_handlers=[],  # one attempt: retries belong to delivery
        )
        self._pacer = pacer or Pacer(interval_s=min_interval_s)
        self._job_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._imports = SlackImportMessages(
            name=name,
            channel=channel,
            client=self._client,
            call=self._call,
            reply=self._reply,
            renderer=renderer,
            state=state,
            public_url=public_url,
            edit_interval_s=edit_interval_s,
            failures=failures,
            now=now,
            buttons=buttons,
        )

    async def send(self, message: Message) -> SendResult:
        """Show the job's latest state in its message; reply in the thread for a failed image.

        An event told inside an import (`message.import_id`) updates the import's message instead
        (`bridge.delivery.channels.slack_import`).
        """
        if message.import_id is not None:
            return await self._imports.send(message)
        data: Mapping[str, Any] = message.payload.get("data") or {}
        key = f"slack:{self._name}:{data.get('account')}:{data.get('job_id')}"
        context = template_context(
            payload=message.payload, job=message.job, public_url=self._public_url
        )
        context["buttons"] = self._buttons
        main = self._render("slack/message", context)
        # Two watches on one job share its message: one send at a time per job in this process.
        lock = self._job_locks.setdefault(key, asyncio.Lock())
        async with lock:
            state = await self._show(key, await self._load(key), main, message)
            if message.event_type == "item.failed":
                await self._reply_failed_item(key, state, context)
            if message.event_type in SLACK_BROADCAST_EVENTS:
                await self._broadcast(key, state, context, message.event_type)
        log.info(
            "slack message shown",
            extra={"channel": self._name, "event_id": message.event_id, "ts": state["ts"]},
        )
        return SendResult(
            status_code=200, response_excerpt=f"channel={state['channel']} ts={state['ts']}"
        )

    async def _show(
        self,
        key: str,
        state: dict[str, Any],
        main: tuple[list[dict[str, Any]], str],
        message: Message,
    ) -> dict[str, Any]:
        """Edit the job's message, or post it when there is none (or someone deleted it)."""
        blocks, text = main
        if not state.get("ts"):
            state = await self._claim_first_post(key, state, message)
        if state.get("ts"):
            try:
                await self._call(
                    lambda: self._client.chat_update(
                        channel=state["channel"], ts=state["ts"], blocks=blocks, text=text
                    )
                )
                return state
            except SlackSendError as exc:
                if exc.slack_error != "message_not_found":
                    raise
        response = await self._call(
            lambda: self._client.chat_postMessage(
                channel=self._channel,
                blocks=blocks,
                text=text,
                unfurl_links=False,
                unfurl_media=False,
            )
        )
        # A crash between Slack's answer and this write would post a second message on retry;
        # Slack offers no idempotency key for chat.postMessage, so the window is kept this small.
        state = {
            "channel": response["channel"],
            "ts": response["ts"],
            "replied_items": [],
            "broadcast": [],
        }
        await self._save(key, state)
        return state

    async def _claim_first_post(
        self, key: str, state: dict[str, Any], message: Message
    ) -> dict[str, Any]:
        """Win the right to post the job's first message (`claim_first_post`), or learn the
        message another send posted."""
        held = await claim_first_post(
            self._state, key, delivery_id=message.delivery_id, now_s=time.time()
        )
        return state if held is None else {**state, **_job_state(held)}

    async def _reply_failed_item(
        self, key: str, state: dict[str, Any], context: dict[str, Any]
    ) -> None:
        item = context["item"] or {}
        item_id = item.get("id")
        if not item_id or item_id in state["replied_items"]:
            return
        await self._reply(state, self._render("slack/item_failed", context), broadcast=False)
        # Recorded only after Slack took the reply. Recording first would lose the reply for good
        # when the post fails (the retry would skip it); recording after can at worst repeat it,
        # if the process dies between the two. At-least-once: a duplicate beats a silent failure.
        state["replied_items"].append(item_id)
        await self._save(key, state)

    async def _broadcast(
        self, key: str, state: dict[str, Any], context: dict[str, Any], event_type: str
    ) -> None:
        if event_type in state["broadcast"]:
            return
        await self._reply(state, self._render("slack/final_failure", context), broadcast=True)
        state["broadcast"].append(event_type)  # after the post, for the reason given above
        await self._save(key, state)

    async def _reply(
        self, state: dict[str, Any], content: tuple[list[dict[str, Any]], str], *, broadcast: bool
    ) -> None:
        blocks, text = content
        await self._call(
            lambda: self._client.chat_postMessage(
                channel=state["channel"],
                thread_ts=state["ts"],
                reply_broadcast=broadcast,
                blocks=blocks,
                text=text,
                unfurl_links=False,
                unfurl_media=False,
            )
        )

    def _render(self, base: str, context: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """Block Kit from `{base}.json.j2` and its text fallback from `{base}.txt.j2`."""
        return render_pair(self._renderer, base, context)

    async def _call(
        self, request: Callable[[], Awaitable[AsyncSlackResponse]]
    ) -> AsyncSlackResponse:
        """One paced Web API call, its failure mapped to a SendError."""
        await self._pacer.wait(self._channel)
        try:
            async with asyncio.timeout(self._timeout_s):
                return await request()
        except SlackApiError as exc:
            error = _api_error(exc)
            if error.retry_after_s is not None:
                self._pacer.hold(self._channel, error.retry_after_s)
            raise error from None
        except TimeoutError:
            raise SlackSendError(f"timeout after {self._timeout_s:g}s") from None
        except (aiohttp.ClientError, OSError, SlackClientError) as exc:
            raise SlackSendError(f"connection error: {type(exc).__name__}") from None

    async def _load(self, key: str) -> dict[str, Any]:
        return _job_state(await read_state(self._state, key))

    async def _save(self, key: str, state: dict[str, Any]) -> None:
        await write_state(self._state, key, state)


def _job_state(stored: dict[str, Any]) -> dict[str, Any]:
    """A job message's state, every key present."""
    return {
        "channel": stored.get("channel"),
        "ts": stored.get("ts"),
        "replied_items": list(stored.get("replied_items") or []),
        "broadcast": list(stored.get("broadcast") or []),
    }


def _api_error(exc: SlackApiError) -> SlackSendError:
    """Slack's answer as a SendError: `ratelimited` carries Retry-After, dead ends are permanent."""
    response = exc.response
    data = response.data if isinstance(response.data, dict) else {}
    error = str(data.get("error") or "unknown_error")
    headers = {str(k).lower(): v for k, v in (response.headers or {}).items()}
    retry_after = (
        slack_retry_after(headers.get("retry-after"))
        if error == "ratelimited" or response.status_code == 429
        else None
    )
    return SlackSendError(
        f"Slack answered {error} (HTTP {response.status_code})",
        slack_error=error,
        status_code=response.status_code,
        retry_after_s=retry_after,
        response_excerpt=error,
        permanent=slack_error_is_permanent(error),
    )
