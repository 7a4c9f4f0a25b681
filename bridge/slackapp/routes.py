"""slack_routes(settings): POST /slack/commands and POST /slack/interactions, served by slack-bolt's
Starlette adapter in the bridge's own Starlette app."""

from __future__ import annotations

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.config import SlackAppConfig
from bridge.slackapp.context import slack_app_of
from bridge.slackapp.listeners import bolt_app

COMMANDS_PATH = "/slack/commands"
INTERACTIONS_PATH = "/slack/interactions"


def slack_routes(settings: SlackAppConfig) -> list[Route]:
    """The Slack app's two request URLs (both go to the same bolt app, as Slack allows)."""
    handler = AsyncSlackRequestHandler(bolt_app(settings))

    async def endpoint(request: Request) -> Response:
        return await handler.handle(request, {"bridge": slack_app_of(request)})

    return [
        Route(COMMANDS_PATH, endpoint, methods=["POST"], name="slackCommands"),
        Route(INTERACTIONS_PATH, endpoint, methods=["POST"], name="slackInteractions"),
    ]
