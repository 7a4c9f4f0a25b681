"""Signing in to the console over a real server: only an operator's token opens a session, the
forms need their csrf_token, failures are throttled, `next` never leaves the console, and a
signed-out page sends its reader to the sign-in form."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bridge.config import Config
from tests.integration.api_support import TOKENS, running_api
from tests.integration.console_support import (
    COOKIE,
    browser,
    csrf_of,
    login_form,
    running_console,
    sign_in,
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bridge.db"


def _cookie_attributes(response: httpx.Response) -> dict[str, str]:
    """The attributes of the response's session Set-Cookie, lower-cased names."""
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")]
    parts = [p.strip() for p in header.split(";")]
    attributes = {}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        attributes[name.lower()] = value
    return {"value": parts[0].split("=", 1)[1], **attributes}


async def _signed_in(http: httpx.AsyncClient) -> bool:
    """Whether the client's session opens the overview (rather than the sign-in redirect)."""
    response = await http.get("/console/")
    assert response.status_code in (200, 303)
    return response.status_code == 200


async def test_console_signin_operator_token_opens_a_session(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api, browser(api) as http:
        assert not await _signed_in(http)
        signed = await sign_in(http, next_path="/console/channels")
        assert signed.status_code == 303
        assert signed.headers["location"] == "/console/channels"
        cookie = _cookie_attributes(signed)
        assert "httponly" in cookie
        assert cookie["samesite"].lower() == "lax"
        assert cookie["path"] == "/console"
        # The signed cookie carries a fingerprint of the token, never the token itself.
        payload = cookie["value"].split(".")[0]
        session = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert session["operator"] == "ops"
        assert TOKENS["ops"] not in json.dumps(session)
        overview = await http.get("/console/")
        assert overview.status_code == 200
        assert "Sign out" in overview.text


async def test_console_signin_refuses_what_is_not_an_operator_token(sqlite_url: str) -> None:
    # Four failures: one short of the throttle, so each answer is the token check's own.
    refusals = {"client": TOKENS["shop"], "empty": "", "blank": "   ", "oversized": "x" * 513}
    async with running_api(sqlite_url) as api, browser(api) as http:
        for case, token in refusals.items():
            refused = await sign_in(http, token)
            assert refused.status_code == 401, case
            assert "That is not an operator token." in refused.text
            assert not await _signed_in(http), case


async def test_console_signin_refuses_a_token_over_the_size_limit(sqlite_url: str) -> None:
    long_token = "o" * 600

    def long_operator(config: Config) -> Config:
        ops = {"ops": config.operators["ops"].model_copy(update={"token": SecretStr(long_token)})}
        return config.model_copy(update={"operators": ops})

    async with running_api(sqlite_url, edit_config=long_operator) as api, browser(api) as http:
        refused = await sign_in(http, long_token)
        assert refused.status_code == 401
        assert not await _signed_in(http)


async def test_console_signin_post_needs_the_forms_csrf_token(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api, browser(api) as http:
        await login_form(http)
        for csrf in (None, "", "forged-token-" + "a" * 40):
            data = {"token": TOKENS["ops"], "next": "/console/"}
            if csrf is not None:
                data["csrf_token"] = csrf
            refused = await http.post("/console/login", data=data)
            assert refused.status_code == 403, csrf
            assert not await _signed_in(http)
        # The same form with its token works: the refusals were the CSRF check.
        assert (await sign_in(http)).status_code == 303
        assert await _signed_in(http)


async def test_console_signin_throttles_failures_from_one_address(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api, browser(api) as http:
        for _ in range(5):
            assert (await sign_in(http, "wrong-token-guess-0001")).status_code == 401
        throttled = await sign_in(http, "wrong-token-guess-0002")
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        assert "Too many failed sign-ins" in throttled.text
        # Even the right token waits out the throttle.
        right = await sign_in(http)
        assert right.status_code == 429
        assert not await _signed_in(http)


async def test_console_signout_with_csrf_ends_the_session(sqlite_url: str) -> None:
    async with running_console(sqlite_url) as console:
        csrf = await console.csrf()
        out = await console.http.post("/console/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
        assert out.headers["location"] == "/console/login"
        after = await console.http.get("/console/deliveries")
        assert after.status_code == 303
        assert after.headers["location"] == "/console/login?next=/console/deliveries"


async def test_console_signout_without_csrf_is_refused(sqlite_url: str) -> None:
    async with running_console(sqlite_url) as console:
        for data in ({}, {"csrf_token": "stale-" + "b" * 40}):
            out = await console.http.post("/console/logout", data=data)
            assert out.status_code == 403
            assert await _signed_in(console.http)


async def test_console_signin_tampered_cookie_is_signed_out(sqlite_url: str) -> None:
    async with running_console(sqlite_url) as console:
        value = console.http.cookies[COOKIE]
        data, stamp, signature = value.split(".")
        middle = len(signature) // 2
        flipped = "A" if signature[middle] != "A" else "B"
        tampered = f"{data}.{stamp}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
        async with browser(console.api) as http:
            genuine = await http.get("/console/", headers={"Cookie": f"{COOKIE}={value}"})
            forged = await http.get("/console/", headers={"Cookie": f"{COOKIE}={tampered}"})
        assert genuine.status_code == 200
        assert forged.status_code == 303
        assert forged.headers["location"].startswith("/console/login")


async def test_console_signin_next_never_leaves_the_console(sqlite_url: str) -> None:
    targets = [
        "//evil.example",
        "https://evil.example",
        "/console/..\\x",
        "/console/\\\\evil.example",
    ]
    async with running_api(sqlite_url) as api, browser(api) as http:
        for target in targets:
            form = await http.get("/console/login", params={"next": target})
            assert 'name="next" value="/console/"' in form.text, target
            signed = await sign_in(http, next_path=target)
            assert signed.status_code == 303
            assert signed.headers["location"] == "/console/", target
        # A console path is kept: the refusals above were about where they pointed.
        kept = await sign_in(http, next_path="/console/imports")
        assert kept.headers["location"] == "/console/imports"


async def test_console_signed_out_page_goes_to_the_sign_in_form(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api, browser(api) as http:
        plain = await http.get("/console/deliveries", params={"status": "dead"})
        assert plain.status_code == 303
        assert (
            plain.headers["location"] == "/console/login?next=/console/deliveries%3Fstatus%3Ddead"
        )
        live = await http.get("/console/deliveries", headers={"HX-Request": "true"})
        assert live.status_code == 401
        assert live.headers["hx-redirect"] == "/console/login?next=/console/deliveries"
        # The form keeps where the reader was going, and signing in goes there.
        form = await http.get(plain.headers["location"])
        assert 'name="next" value="/console/deliveries?status=dead"' in form.text
        csrf = csrf_of(form.text)
        signed = await http.post(
            "/console/login",
            data={
                "token": TOKENS["ops"],
                "csrf_token": csrf,
                "next": "/console/deliveries?status=dead",
            },
        )
        assert signed.headers["location"] == "/console/deliveries?status=dead"


async def test_console_session_ends_twelve_hours_after_sign_in_however_busy(
    sqlite_url: str,
) -> None:
    # The cookie is re-signed on every answer (a live page asks every 3 s): its own age only says
    # how idle the tab is, so the session carries when it began.
    async with running_console(sqlite_url) as console:
        for _ in range(3):
            console.api.clock.advance(hours=4)
            assert (await console.http.get("/console/")).status_code == 200
        console.api.clock.advance(hours=0.5)  # 12.5 h after sign-in, last request 30 min ago
        after = await console.http.get("/console/")
        assert after.status_code == 303
        assert after.headers["location"].startswith("/console/login")
