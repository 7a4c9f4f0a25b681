"""slack_routes(settings): POST /slack/commands and POST /slack/interactions, served by slack-bolt's
Starlette adapter in the bridge's own Starlette app."""

from __future__ import annotations

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier
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
    verifier = SignatureVerifier(settings.signing_secret.get_secret_value())

    async def endpoint(request: Request) -> Response:
        # The signature first, over the raw bytes: bolt parses the body before it checks, so a
        # malformed unsigned body would otherwise be a 500 and a logged traceback, not a 401.
        body = await request.body()
        try:
            valid = verifier.is_valid(
                body=body,
                timestamp=request.headers.get("x-slack-request-timestamp", ""),
                signature=request.headers.get("x-slack-signature", ""),
            )
        except (ValueError, TypeError, UnicodeError):
            valid = False
        if not valid:
            return Response("invalid signature", status_code=401, media_type="text/plain")
        return await handler.handle(request, {"bridge": slack_app_of(request)})

    return [
        Route(COMMANDS_PATH, endpoint, methods=["POST"], name="slackCommands"),
        Route(INTERACTIONS_PATH, endpoint, methods=["POST"], name="slackInteractions"),
    ]
