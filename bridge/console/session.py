"""The console's session: a signed, HttpOnly, SameSite cookie (Starlette's SessionMiddleware, which
signs with itsdangerous) holding the operator's name, a fingerprint of their token and a CSRF token.

The signing key is derived from the operators' tokens, so every replica agrees on it without a new
secret, and rotating a token signs its holder out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request

from bridge.config import OperatorConfig

COOKIE = "bridge_console"
MAX_AGE_S = 12 * 3600
CSRF_FIELD = "csrf_token"


def _token(config: OperatorConfig) -> bytes:
    return config.token.get_secret_value().encode("utf-8")


def session_key(operators: Mapping[str, OperatorConfig]) -> str:
    """The cookie-signing key: an HMAC over every operator's name and token."""
    mac = hmac.new(b"photo-bridge console session v1", digestmod=hashlib.sha256)
    for name in sorted(operators):
        mac.update(name.encode("utf-8") + b"\0" + _token(operators[name]) + b"\0")
    return mac.hexdigest()


def fingerprint(name: str, config: OperatorConfig) -> str:
    """A keyed digest of an operator's token: the session holds this, never the token (nor a plain
    hash of it that could be guessed at offline)."""
    mac = hmac.new(
        _token(config), b"photo-bridge console operator\0" + name.encode(), hashlib.sha256
    )
    return mac.hexdigest()[:32]


def session_middleware(operators: Mapping[str, OperatorConfig]) -> Middleware:
    """SessionMiddleware for the console's mount: cookie on /console only, 12 hours, SameSite=Lax.

    `https_only` stays off so the console works on plain loopback; behind TLS the proxy should mark
    the cookie Secure.
    """
    return Middleware(
        SessionMiddleware,
        secret_key=session_key(operators),
        session_cookie=COOKIE,
        max_age=MAX_AGE_S,
        path="/console",
        same_site="lax",
        https_only=False,
    )


def signed_in_operator(
    request: Request, operators: Mapping[str, OperatorConfig], *, now: datetime
) -> str | None:
    """The operator this session belongs to, if it is still valid for their current token and
    began less than MAX_AGE_S ago (the cookie is re-signed on every answer, so its own age says
    only how long the tab has been idle)."""
    since = request.session.get("since")
    if not isinstance(since, int | float) or not 0 <= now.timestamp() - since <= MAX_AGE_S:
        return None
    name = request.session.get("operator")
    if not isinstance(name, str) or name not in operators:
        return None
    held = request.session.get("fingerprint")
    if not isinstance(held, str) or not hmac.compare_digest(
        held, fingerprint(name, operators[name])
    ):
        return None
    return name


def start_session(request: Request, *, name: str, config: OperatorConfig, now: datetime) -> None:
    """A fresh session for `name`: a new CSRF token, nothing from before sign-in kept."""
    request.session.clear()
    request.session.update(
        operator=name,
        fingerprint=fingerprint(name, config),
        csrf=secrets.token_urlsafe(32),
        since=int(now.timestamp()),
    )


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (the sign-in form has one before sign-in)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, offered: object) -> bool:
    """Whether a form's `csrf_token` is this session's."""
    held = request.session.get("csrf")
    return (
        isinstance(held, str)
        and isinstance(offered, str)
        and hmac.compare_digest(held.encode(), offered.encode())
    )
