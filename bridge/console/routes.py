"""console_mount(): the console's pages, assets and middleware, mounted at /console."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge.config import OperatorConfig
from bridge.console import channels, deliveries, imports, overview, signin, thumbnails, watch
from bridge.console.headers import ConsoleHeaders
from bridge.console.page import FormRefused, SignInRequired, sign_in_redirect
from bridge.console.session import session_middleware

STATIC_DIR = Path(__file__).with_name("static")


class ConsoleErrors:
    """Answers inside the console's headers: SignInRequired with the sign-in redirect, a refused
    form with 403, and the router's 404 and 405 as short plain text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response: Response
        try:
            await self.app(scope, receive, send)
            return
        except SignInRequired:
            response = sign_in_redirect(Request(scope))
        except FormRefused as exc:
            response = PlainTextResponse(str(exc), status_code=403)
        except HTTPException as exc:
            response = PlainTextResponse(exc.detail, status_code=exc.status_code)
        await response(scope, receive, send)


async def _to_overview(request: Request) -> Response:
    return RedirectResponse("/console/", status_code=308)


def console_routes() -> list[Route | Mount]:
    """The console's routes, relative to /console."""
    return [
        Route("/", overview.overview),
        Route("/login", signin.login_page, methods=["GET"]),
        Route("/login", signin.login, methods=["POST"]),
        Route("/logout", signin.logout, methods=["POST"]),
        Route("/imports", imports.list_imports),
        Route("/imports/{import_id}", imports.show_import),
        Route("/imports/{import_id}/failures.csv", imports.failures_file),
        Route("/watches/{watch_id}", watch.show_watch),
        Route("/watches/{watch_id}/items/{item_id:path}/thumbnail", thumbnails.thumbnail),
        Route("/deliveries", deliveries.list_deliveries),
        Route("/deliveries/redeliver", deliveries.redeliver_all, methods=["POST"]),
        Route("/deliveries/{delivery_id}/redeliver", deliveries.redeliver, methods=["POST"]),
        Route("/channels", channels.list_channels),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]


def console_mount(operators: Mapping[str, OperatorConfig]) -> list[Route | Mount]:
    """The console at /console/ (and /console itself sends there)."""
    return [
        Route("/console", _to_overview),
        Mount(
            "/console",
            routes=console_routes(),
            middleware=[
                Middleware(ConsoleHeaders),
                session_middleware(operators),
                Middleware(ConsoleErrors),
            ],
        ),
    ]
