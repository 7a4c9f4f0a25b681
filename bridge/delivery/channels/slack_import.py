"""Slack, imports: one message per import and channel, edited in place at most once per
`edit_interval_s`, failed images as thread replies, a broadcast when the import ends with failures.

Coalescing: a send that finds the message already showing the import as its delivery read it (or
newer) is done without a call. A send with something new to show within `edit_interval_s` of the
last edit is put off (`SendResult.defer_until`, the end of the interval; no attempt is counted)
and comes back then with the import read afresh: so every change lands, at most one edit per
interval, and the put-off sends of one interval mostly find the message already up to date. What
the message shows and when it was last edited live in the channel state, so a restart changes
nothing. Two replicas sending for one import in the same instant may both edit (the per-process
lock does not span replicas); both show the latest state, so nothing is lost either way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bridge.delivery.channels import ImportFailures, Message, SendError, SendResult, StateStore
from bridge.delivery.channels.slack_blocks import render_pair
from bridge.delivery.channels.slack_state import (
    SlackSendError,
    claim_first_post,
    read_state,
    write_state,
)
from bridge.rendering import SLACK_IMPORT_BROADCAST, Renderer, import_context

Call = Callable[[Callable[[], Awaitable[AsyncSlackResponse]]], Awaitable[AsyncSlackResponse]]
# SlackChannel._reply: a reply in a message's thread, broadcast to the channel or not.
Reply = Callable[..., Awaitable[None]]
Content = tuple[list[dict[str, Any]], str]

REPLY_LINES = 20  # failed images one thread reply lists; the rest are counted ("and N more")
FAILURES_READ = 500  # failed images one send reads at most; more wait for the next send
_SHOWN_KEYS = ("name", "status", "closed", "expected_jobs", "jobs", "images", "credits_used")


def shown_mark(view: Mapping[str, Any]) -> dict[str, str]:
    """What identifies the import state a message shows: when the import was last written and a
    digest of what the message says about it (rate and ETA move with the clock, so not those)."""
    said = {k: view.get(k) for k in (*_SHOWN_KEYS, "stalled", "ended_at")}
    digest = hashlib.sha256(json.dumps(said, sort_keys=True, default=str).encode()).hexdigest()
    return {"updated_at": str(view.get("updated_at") or ""), "digest": digest[:16]}


def is_news(view: Mapping[str, Any], shown: Mapping[str, Any] | None) -> bool:
    """Whether `view` is newer than what the message shows; an older read never rolls it back."""
    if not shown:
        return True
    mark = shown_mark(view)
    updated, before = _moment(mark["updated_at"]), _moment(str(shown.get("updated_at") or ""))
    if updated is None or before is None or updated == before:
        return mark["digest"] != shown.get("digest")
    return updated > before


def _moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class SlackImportMessages:
    """The import side of a Slack channel: built by `SlackChannel`, which hands it its client."""

    def __init__(
        self,
        *,
        name: str,
        channel: str,
        client: AsyncWebClient,
        call: Call,
        reply: Reply,
        renderer: Renderer,
        state: StateStore,
        public_url: str,
        edit_interval_s: float,
        failures: ImportFailures | None,
        now: Callable[[], datetime],
        buttons: bool = False,
    ) -> None:
        self._name = name
        self._channel = channel
        self._client = client
        self._call = call
        self._reply = reply
        self._renderer = renderer
        self._state = state
        self._public_url = public_url
        self._interval = timedelta(seconds=edit_interval_s)
        self._failures = failures
        self._now = now
        self._buttons = buttons
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def send(self, message: Message) -> SendResult:
        """Bring the import's message up to date (or put that off), then reply with new failures."""
        view = message.import_view
        if view is None or message.import_id is None:
            return SendResult(response_excerpt="skipped: the import is no longer stored")
        key = f"slack:{self._name}:import:{message.import_id}"
        context = import_context(view=view, payload=message.payload, public_url=self._public_url)
        context["buttons"] = self._buttons
        async with self._locks.setdefault(key, asyncio.Lock()):
            state = await read_state(self._state, key)
            state, defer_until = await self._show(key, state, context, message)
            await self._reply_failures(key, state, context, message.import_id)
            if view.get("status") in SLACK_IMPORT_BROADCAST and not state.get("broadcast"):
                await self._reply(
                    state, self._render("import_final_failure", context), broadcast=True
                )
                state["broadcast"] = True  # after the post: at worst a repeat, never a loss
                await write_state(self._state, key, state)
        said = "edit put off" if defer_until is not None else "shown"
        return SendResult(
            status_code=200,
            response_excerpt=f"channel={state['channel']} ts={state['ts']} {said}",
            defer_until=defer_until,
        )

    async def _show(
        self, key: str, state: dict[str, Any], context: dict[str, Any], message: Message
    ) -> tuple[dict[str, Any], datetime | None]:
        """Post the message, edit it, or leave it (up to date, or edited too recently: then
        also when to come back)."""
        view = context["import"]
        now = self._now()
        if not state.get("ts"):
            held = await claim_first_post(
                self._state, key, delivery_id=message.delivery_id, now_s=now.timestamp()
            )
            state = held or {}
        if state.get("ts"):
            if not is_news(view, state.get("shown")):
                return state, None
            due = datetime.fromtimestamp(float(state.get("edited_at") or 0), now.tzinfo)
            due += self._interval
            if due > now:
                return state, due
            if await self._edit(state, self._render("import", context)):
                state = {**state, "shown": shown_mark(view), "edited_at": now.timestamp()}
                await write_state(self._state, key, state)
                return state, None
        state = await self._post(state, self._render("import", context))
        state = {**state, "shown": shown_mark(view), "edited_at": now.timestamp()}
        # A crash between Slack's answer and this write would post a second message on retry;
        # Slack offers no idempotency key for chat.postMessage, so the window is kept this small.
        await write_state(self._state, key, state)
        return state, None

    async def _edit(self, state: dict[str, Any], content: Content) -> bool:
        """Edit the message; False when Slack no longer has it (someone deleted it)."""
        blocks, text = content
        try:
            await self._call(
                lambda: self._client.chat_update(
                    channel=state["channel"], ts=state["ts"], blocks=blocks, text=text
                )
            )
        except SlackSendError as exc:
            if exc.slack_error != "message_not_found":
                raise
            return False
        return True

    async def _post(self, state: dict[str, Any], content: Content) -> dict[str, Any]:
        blocks, text = content
        response = await self._call(
            lambda: self._client.chat_postMessage(
                channel=self._channel,
                blocks=blocks,
                text=text,
                unfurl_links=False,
                unfurl_media=False,
            )
        )
        kept: dict[str, Any] = {k: state[k] for k in ("replied_after", "broadcast") if k in state}
        return {"channel": response["channel"], "ts": response["ts"], **kept}

    async def _reply_failures(
        self, key: str, state: dict[str, Any], context: dict[str, Any], import_id: str
    ) -> None:
        """One reply listing the failed images found since the last reply (20, then a count)."""
        if self._failures is None:
            return
        after = state.get("replied_after")
        try:
            found = await self._failures.failures(
                import_id=import_id, limit=FAILURES_READ, after=after
            )
        except Exception as exc:  # the store is the database: any failure is worth a retry
            raise SendError(f"import failures unavailable: {type(exc).__name__}") from None
        if not found:
            return
        rows = [_failure(f) for f in found[:REPLY_LINES]]
        reply = {**context, "failures": rows, "more": len(found) - len(rows)}
        await self._reply(state, self._render("import_failures", reply), broadcast=False)
        state["replied_after"] = found[-1].id  # after the post, for the reason given above
        await write_state(self._state, key, state)

    def _render(self, base: str, context: dict[str, Any]) -> Content:
        return render_pair(self._renderer, f"slack/{base}", context)


def _failure(record: Any) -> dict[str, Any]:
    return {
        "external_id": record.external_id,
        "job_id": record.job_id,
        "item_id": record.item_id,
        "error_code": record.error_code,
        "error_message": record.error_message,
    }
