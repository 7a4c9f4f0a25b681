"""Sign-in and sign-out: an operator's token (never a client's) starts a console session; failures
are throttled."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bridge.console.context import console_of
from bridge.console.page import checked_form, render, safe_back
from bridge.console.session import start_session

log = logging.getLogger(__name__)
MAX_TOKEN_CHARS = 512


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _operator_for(request: Request, token: str) -> str | None:
    """The operator holding `token`, compared as digests so timing tells nothing."""
    offered = hashlib.sha256(token.encode("utf-8")).digest()
    found: str | None = None
    for name, config in console_of(request).operators.items():
        expected = hashlib.sha256(config.token.get_secret_value().encode("utf-8")).digest()
        if hmac.compare_digest(offered, expected) and found is None:
            found = name
    return found


async def login_page(request: Request) -> Response:
    """GET /console/login: the sign-in form."""
    back = safe_back(request.query_params.get("next"))
    return render(request, "login.html.j2", title="Sign in", back=back, error=None)


async def login(request: Request) -> Response:
    """POST /console/login: check the token; a session for its operator, or the form again."""
    console = console_of(request)
    form = await checked_form(request)
    back = safe_back(str(form.get("next") or ""))
    address = _address(request)
    wait_s = console.throttle.wait_s(address)
    if wait_s > 0:
        retry = str(max(1, math.ceil(wait_s)))
        response = render(
            request,
            "login.html.j2",
            code=429,
            title="Sign in",
            back=back,
            error=f"Too many failed sign-ins. Try again in {retry} s.",
        )
        response.headers["Retry-After"] = retry
        return response
    token = str(form.get("token") or "").strip()
    name = _operator_for(request, token) if 0 < len(token) <= MAX_TOKEN_CHARS else None
    if name is None:
        console.throttle.failed(address)
        log.warning("console sign-in refused", extra={"address": address})
        return render(
            request,
            "login.html.j2",
            code=401,
            title="Sign in",
            back=back,
            error="That is not an operator token.",
        )
    start_session(request, name=name, config=console.operators[name], now=console.now())
    log.info("console sign-in", extra={"operator": name, "address": address})
    return RedirectResponse(back, status_code=303)


async def logout(request: Request) -> Response:
    """POST /console/logout: end the session."""
    await checked_form(request)
    request.session.clear()
    return RedirectResponse("/console/login", status_code=303)
