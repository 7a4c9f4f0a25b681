"""What every console page shares: who is signed in, the CSRF check on forms, and rendering a page
with the security headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bridge.console.context import console_of
from bridge.console.session import CSRF_FIELD, csrf_ok, csrf_token, signed_in_operator

MAX_FORM_FIELDS = 20


class SignInRequired(Exception):
    """The request needs a signed-in operator; answered with the sign-in page."""


class FormRefused(Exception):
    """A posted form without this session's CSRF token: 403, nothing changed."""


def operator_of(request: Request) -> str:
    """The signed-in operator's name, or raise SignInRequired."""
    console = console_of(request)
    name = signed_in_operator(request, console.operators, now=console.now())
    if name is None:
        raise SignInRequired
    return name


def is_live(request: Request) -> bool:
    """Whether htmx asked for the page (a live refresh), not a person."""
    return request.headers.get("hx-request") == "true"


def safe_back(target: str | None, default: str = "/console/") -> str:
    """A same-site console path to go back to; anything else (another host, `//x`) is `default`."""
    if not target or not target.startswith("/console/") or "\\" in target or "//" in target:
        return default
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return default
    return target


def sign_in_redirect(request: Request) -> Response:
    """Off to the sign-in page (for htmx: 401 with HX-Redirect, so the page navigates whole)."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/console/login?next=" + quote(safe_back(back), safe="/")
    if is_live(request):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def render(
    request: Request, template: str, *, code: int = 200, title: str, **context: Any
) -> HTMLResponse:
    """A console page with the fields every layout uses."""
    console = console_of(request)
    name = signed_in_operator(request, console.operators, now=console.now())
    html = console.renderer.render(
        template,
        {
            "title": title,
            "operator": name,
            "csrf": csrf_token(request),
            "path": request.url.path,
            "live_url": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "now": console.now(),
            "refresh_s": console.refresh_s,
            "flash": None if is_live(request) else request.session.pop("flash", None),
            **context,
        },
    )
    return HTMLResponse(html, status_code=code)


def not_found(request: Request, what: str) -> HTMLResponse:
    """The console's 404 page."""
    return render(request, "not_found.html.j2", code=404, title="Not found", what=what)


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token is this session's; else 403 and nothing changes."""
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        raise FormRefused("the form's csrf_token is missing or stale; reload the page")
    return form
