"""bolt_app(settings): the slack-bolt AsyncApp that verifies Slack's requests and answers the slash
command and the buttons. Bolt answers a request without a valid signature, or signed more than 5
minutes ago, with 401 before any listener runs.

Each listener finds the bridge's SlackAppContext in bolt's `context["bridge"]` (the endpoint puts
it there), so the app itself is built at start-up with no Slack call and no storage.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bridge.config import SlackAppConfig
from bridge.slackapp.answers import Asker, answer, list_text
from bridge.slackapp.buttons import MUTE, SHOW_FAILURES, failures_text, mute_text
from bridge.slackapp.commands import ListSubscriptions, Mistake, parse_button, parse_command
from bridge.slackapp.context import SlackAppContext

log = logging.getLogger(__name__)

SLACK_TIMEOUT_S = 10
TROUBLE = "The bridge could not do that just now; try again in a moment."


def refusal(team_id: str | None) -> str:
    """What a user of a Slack team outside `slack_app.allowed_teams` reads."""
    return (
        f"This Slack workspace ({team_id or 'unknown'}) may not use this photo-bridge: "
        "ask its operators to add it to slack_app.allowed_teams."
    )


# Slack's own id shapes: anything else (empty, markup, control characters) is refused, never stored.
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,30}")
BAD_CHANNEL = "The bridge cannot tell which channel this came from; use it in a channel."


def _valid_channel(value: object) -> str | None:
    return value if isinstance(value, str) and CHANNEL_ID.fullmatch(value) else None


def _bridge(context: AsyncBoltContext) -> SlackAppContext:
    found = context.get("bridge")
    if not isinstance(found, SlackAppContext):
        raise RuntimeError("the Slack app was called outside the bridge's endpoint")
    return found


async def on_command(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """A slash command: every reply is ephemeral; a long one follows the ack through respond()."""
    ctx = _bridge(context)
    team_id = body.get("team_id")
    if not ctx.allows(team_id):
        await ack(text=refusal(team_id), response_type="ephemeral")
        return
    channel_id = _valid_channel(body.get("channel_id"))
    if channel_id is None:
        await ack(text=BAD_CHANNEL, response_type="ephemeral")
        return
    asker = Asker(
        team_id=str(team_id or ""),
        channel_id=channel_id,
        user_id=body.get("user_id"),
        command=str(body.get("command") or "/photos"),
    )
    parsed = parse_command(str(body.get("text") or ""))
    if isinstance(parsed, Mistake):
        await ack(text=parsed.message, response_type="ephemeral")
        return
    if isinstance(parsed, ListSubscriptions):  # may be long: acknowledge first, then answer
        await ack()
        await respond(text=await _safely(list_text(ctx, asker)), response_type="ephemeral")
        return
    await ack(text=await _safely(answer(ctx, parsed, asker)), response_type="ephemeral")


async def on_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """show_failures and mute: acknowledged at once, answered ephemerally through respond()."""
    await ack()
    ctx = _bridge(context)
    team_id = (body.get("team") or {}).get("id")
    # In a channel shared between workspaces the clicking user's own team must be allowed too.
    user_team = (body.get("user") or {}).get("team_id", team_id)
    for team in (team_id, user_team):
        if not ctx.allows(team):
            await _tell(respond, refusal(team))
            return
    action = (body.get("actions") or [{}])[0]
    parsed = parse_button(str(action.get("value") or ""))
    if parsed is None:
        await _tell(respond, "This button names nothing the bridge knows.")
        return
    kind, ref = parsed
    if action.get("action_id") == SHOW_FAILURES:
        text = await _safely(failures_text(ctx, kind, ref))
    else:
        channel_id = _valid_channel((body.get("channel") or {}).get("id"))
        if channel_id is None:
            await _tell(respond, BAD_CHANNEL)
            return
        user_id = (body.get("user") or {}).get("id")
        text = await _safely(mute_text(ctx, kind, ref, channel_id=channel_id, user_id=user_id))
    await _tell(respond, text)


async def _tell(respond: AsyncRespond, text: str) -> None:
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def _safely(work: Any) -> str:
    """The answer, or a plain apology when storage fails (logged, never shown)."""
    try:
        text: str = await work
    except Exception:
        log.exception("slack app request failed")
        return TROUBLE
    return text


async def _ssl_check(body: dict[str, Any], next: Any) -> BoltResponse | None:
    # Slack's ssl_check, answered only after bolt verified its signature (bolt's own would answer
    # it unsigned).
    if body.get("ssl_check") == "1":
        return BoltResponse(status=200, body="")
    await next()
    return None


def bolt_app(settings: SlackAppConfig) -> AsyncApp:
    """The Slack app: signature checks, one listener for the slash command, one per button."""
    token = settings.token.get_secret_value()

    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        # The bot token from the config: no auth.test call, at start-up or per request.
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token)

    client_args: dict[str, Any] = {"timeout": SLACK_TIMEOUT_S}
    if settings.base_url:
        client_args["base_url"] = settings.base_url
    app = AsyncApp(
        name="photo-bridge",
        signing_secret=settings.signing_secret.get_secret_value(),
        authorize=authorize,
        client=AsyncWebClient(**client_args),
        ssl_check_enabled=False,
        url_verification_enabled=False,
        before_authorize=_ssl_check,
    )
    app.command(re.compile(r"^/.+"))(on_command)
    app.action(SHOW_FAILURES)(on_button)
    app.action(MUTE)(on_button)
    return app
