"""A stand-in of the Slack Web API and of an incoming webhook, served on loopback for tests.

It answers the way Slack does: HTTP 200 with `{"ok": false, "error": ...}` for API errors,
HTTP 429 with `Retry-After` for `ratelimited`, and it rejects Block Kit past Slack's limits with
`invalid_blocks`, so a test passes only if what the bridge sends would pass on the real thing.
Point slack-sdk at it with `AsyncWebClient(base_url=standin.api_url)`.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_MESSAGE_TEXT = 40_000


@dataclass
class Call:
    """One request the stand-in received (also the refused ones)."""

    method: str
    body: dict[str, Any]
    token: str | None
    answer: str  # "ok" or the error code given


@dataclass
class Posted:
    """A message as the channel shows it now."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    reply_broadcast: bool = False
    edits: int = 0


@dataclass
class _Planned:
    method: str | None  # None: whichever method comes next
    error: str
    status: int = 200
    retry_after: int | None = None


@dataclass
class SlackStandin:
    """Records calls and messages; `fail_next` and `ratelimit_next` script the next answers."""

    token: str = "xoxb-standin-token"
    channels: tuple[str, ...] = ("C0123456",)
    webhook_path: str = "/services/T0000/B0000/standinsecret"
    url: str = ""  # set once served
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, Posted] = field(default_factory=dict)
    webhook_messages: list[dict[str, Any]] = field(default_factory=list)
    stall: asyncio.Event | None = None  # while set to an unset Event, API calls wait on it
    _planned: list[_Planned] = field(default_factory=list)
    _clock: int = 0

    @functools.cached_property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["POST"]),
                Route("/services/{rest:path}", self._webhook, methods=["POST"]),
            ]
        )

    @property
    def api_url(self) -> str:
        """The `base_url` slack-sdk wants, with its trailing slash."""
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{self.webhook_path}"

    # ----- scripting ---------------------------------------------------------------------------

    def fail_next(self, error: str, *, method: str | None = None, status: int = 200) -> None:
        """Answer the next call (of `method`, if given) with Slack error `error`."""
        self._planned.append(_Planned(method, error, status))

    def ratelimit_next(self, *, retry_after: int = 30, method: str | None = None) -> None:
        """Answer the next call with HTTP 429 `ratelimited` and `Retry-After: retry_after`."""
        self._planned.append(_Planned(method, "ratelimited", 429, retry_after))

    # ----- reading -----------------------------------------------------------------------------

    def top_level(self) -> list[Posted]:
        """Messages in the channel itself, oldest first (thread replies left out)."""
        return [m for m in self.messages.values() if m.thread_ts is None]

    def replies(self, ts: str) -> list[Posted]:
        """Replies in the thread of message `ts`, oldest first."""
        return [m for m in self.messages.values() if m.thread_ts == ts]

    def answered(self, method: str) -> list[Call]:
        """Calls of `method` that Slack accepted."""
        return [c for c in self.calls if c.method == method and c.answer == "ok"]

    # ----- the Web API -------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        body = await _body(request)
        token = _bearer(request.headers.get("authorization"))
        if self.stall is not None:
            await asyncio.wait_for(self.stall.wait(), timeout=10)
        planned = self._take_planned(method)
        if planned is not None:
            self.calls.append(Call(method, body, token, planned.error))
            headers = {"Retry-After": str(planned.retry_after)} if planned.retry_after else None
            return JSONResponse(
                {"ok": False, "error": planned.error}, status_code=planned.status, headers=headers
            )
        handler = {"chat.postMessage": self._post, "chat.update": self._update}.get(method)
        if token is None:
            answer: dict[str, Any] = {"ok": False, "error": "not_authed"}
        elif token != self.token:
            answer = {"ok": False, "error": "invalid_auth"}
        elif handler is None:
            answer = {"ok": False, "error": "unknown_method"}
        else:
            answer = handler(body)
        self.calls.append(Call(method, body, token, "ok" if answer["ok"] else answer["error"]))
        return JSONResponse(answer)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel")
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        problem = _content_problem(body)
        if problem is not None:
            return problem
        thread_ts = body.get("thread_ts")
        if thread_ts is not None:
            parent = self.messages.get(thread_ts)
            if parent is None or parent.channel != channel or parent.thread_ts is not None:
                return {"ok": False, "error": "thread_not_found"}
        self._clock += 1
        ts = f"{1_764_331_200 + self._clock}.{self._clock:06d}"
        posted = Posted(
            channel=channel,
            ts=ts,
            text=body.get("text") or "",
            blocks=body.get("blocks") or [],
            thread_ts=thread_ts,
            reply_broadcast=_truthy(body.get("reply_broadcast")),
        )
        self.messages[ts] = posted
        return {"ok": True, "channel": channel, "ts": ts, "message": _message_json(posted)}

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel")
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        posted = self.messages.get(body.get("ts") or "")
        if posted is None or posted.channel != channel:
            return {"ok": False, "error": "message_not_found"}
        problem = _content_problem(body)
        if problem is not None:
            return problem
        posted.text = body.get("text") or ""
        posted.blocks = body.get("blocks") or []
        posted.edits += 1
        return {
            "ok": True,
            "channel": channel,
            "ts": posted.ts,
            "text": posted.text,
            "message": _message_json(posted),
        }

    def _take_planned(self, method: str) -> _Planned | None:
        for planned in self._planned:
            if planned.method in (None, method):
                self._planned.remove(planned)
                return planned
        return None

    # ----- the incoming webhook ----------------------------------------------------------------

    async def _webhook(self, request: Request) -> Response:
        body = await _body(request)
        if request.url.path != self.webhook_path:
            self.calls.append(Call("webhook", body, None, "no_service"))
            return PlainTextResponse("no_service", status_code=404)
        planned = self._take_planned("webhook")
        if planned is not None:
            self.calls.append(Call("webhook", body, None, planned.error))
            headers = {"Retry-After": str(planned.retry_after)} if planned.retry_after else None
            return PlainTextResponse(planned.error, status_code=planned.status, headers=headers)
        problem = _content_problem(body)
        if problem is not None:
            self.calls.append(Call("webhook", body, None, problem["error"]))
            return PlainTextResponse(problem["error"], status_code=400)
        self.calls.append(Call("webhook", body, None, "ok"))
        self.webhook_messages.append(body)
        return PlainTextResponse("ok")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        value = json.loads(raw or b"{}")
        return value if isinstance(value, dict) else {}
    form = dict(parse_qsl(raw.decode()))
    if isinstance(form.get("blocks"), str):
        form["blocks"] = json.loads(form["blocks"])
    return form


def _bearer(header: str | None) -> str | None:
    if not header or not header.lower().startswith("bearer "):
        return None
    return header[7:].strip() or None


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _message_json(posted: Posted) -> dict[str, Any]:
    return {
        "type": "message",
        "user": "U0BRIDGE",
        "bot_id": "B0BRIDGE",
        "text": posted.text,
        "blocks": posted.blocks,
        "ts": posted.ts,
        **({"thread_ts": posted.thread_ts} if posted.thread_ts else {}),
    }


def _content_problem(body: dict[str, Any]) -> dict[str, Any] | None:
    """Slack's own answer to content it would refuse, or None."""
    blocks = body.get("blocks")
    text = body.get("text")
    if not blocks and not text:
        return {"ok": False, "error": "no_text"}
    if text is not None and len(text) > MAX_MESSAGE_TEXT:
        return {"ok": False, "error": "msg_too_long"}
    errors = _block_errors(blocks) if blocks is not None else []
    if errors:
        return {"ok": False, "error": "invalid_blocks", "errors": errors}
    return None


def _block_errors(blocks: Any) -> list[str]:
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    errors = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for n, block in enumerate(blocks):
        if not isinstance(block, dict) or "type" not in block:
            errors.append(f"missing type [json-pointer:/blocks/{n}]")
            continue
        limit = MAX_HEADER_TEXT if block["type"] == "header" else MAX_TEXT
        errors += _text_errors(block.get("text"), limit, f"/blocks/{n}/text")
        fields = block.get("fields") or []
        if len(fields) > 10:
            errors.append(f"no more than 10 items allowed [json-pointer:/blocks/{n}/fields]")
        for k, item in enumerate(fields):
            errors += _text_errors(item, MAX_FIELD_TEXT, f"/blocks/{n}/fields/{k}")
        for k, element in enumerate(block.get("elements") or []):
            errors += _text_errors(element, MAX_TEXT, f"/blocks/{n}/elements/{k}")
    return errors


def _text_errors(obj: Any, limit: int, pointer: str) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in ("mrkdwn", "plain_text"):
        return []
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be a non-empty string [json-pointer:{pointer}/text]"]
    if len(text) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{pointer}/text]"]
    return []
