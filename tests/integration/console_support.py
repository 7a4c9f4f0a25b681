"""Shared pieces for the console tests: a running bridge with an operator signed in through the
real login form, the CSRF token read off a page, and rows seeded the way the bridge writes them."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import markupsafe
from sqlalchemy import insert, select, update

from bridge.config import Config
from bridge.ids import new_id
from bridge.store import Store
from bridge.store.tables import (
    deliveries,
    delivery_attempts,
    import_failures,
    imports,
    poll_log,
    upstream_jobs,
)
from tests.integration.api_support import NOW, TOKENS, WHSEC, Api, running_api

COOKIE = "bridge_console"
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
HOSTILE = (SCRIPT, ATTRIBUTE)
# Every secret api_support's config holds: no console page may show any of them.
SECRETS = (*TOKENS.values(), WHSEC, "aigen_test_main", "aigen_test_second", "xoxb-api-support")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    """The hidden csrf_token of the first form on a page."""
    found = _CSRF.search(page)
    assert found is not None, "no csrf_token on the page"
    return found.group(1)


def escaped(text: str) -> str:
    """`text` as the console's autoescaping (markupsafe) writes it into HTML."""
    return str(markupsafe.escape(text))


def assert_shown_escaped(page: str, hostile: str) -> None:
    """The hostile string is on the page only as text, never as markup."""
    assert hostile not in page
    assert escaped(hostile) in page


async def login_form(http: httpx.AsyncClient, next_path: str | None = None) -> str:
    """GET the sign-in page (which starts a cookie session) and return its csrf_token."""
    query = {"next": next_path} if next_path else None
    page = await http.get("/console/login", params=query)
    assert page.status_code == 200
    return csrf_of(page.text)


async def sign_in(
    http: httpx.AsyncClient, token: str = TOKENS["ops"], *, next_path: str = "/console/"
) -> httpx.Response:
    """Sign in through the real form: fetch it, post the token with its csrf_token."""
    csrf = await login_form(http)
    return await http.post(
        "/console/login", data={"token": token, "csrf_token": csrf, "next": next_path}
    )


@dataclass
class Console:
    """A running bridge, its API, and a browser-like client with an operator signed in."""

    api: Api
    http: httpx.AsyncClient

    @property
    def store(self) -> Store:
        return self.api.store

    async def page(self, path: str, **headers: str) -> httpx.Response:
        """GET a console page as the signed-in operator; it must answer 200."""
        response = await self.http.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return response

    async def csrf(self) -> str:
        """The session's csrf_token, read off the overview's sign-out form."""
        return csrf_of((await self.page("/console/")).text)

    async def post(
        self, path: str, data: dict[str, str], *, csrf: str | None = "session"
    ) -> httpx.Response:
        """POST a console form; csrf="session" sends the right token, None sends none."""
        if csrf == "session":
            csrf = await self.csrf()
        fields = {**data, "csrf_token": csrf} if csrf is not None else data
        return await self.http.post(path, data=fields)


@contextlib.asynccontextmanager
async def browser(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh client for the running bridge with its own cookie jar; redirects not followed."""
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        yield http


@contextlib.asynccontextmanager
async def running_console(
    storage_url: str, *, edit_config: Callable[[Config], Config] | None = None
) -> AsyncIterator[Console]:
    """Serve the bridge (no background work) and sign the operator "ops" in through the form."""
    async with running_api(storage_url, edit_config=edit_config) as api, browser(api) as http:
        signed = await sign_in(http)
        assert signed.status_code == 303, signed.text
        yield Console(api=api, http=http)


# Seeding -----------------------------------------------------------------------------------


async def new_watch(api: Api, *, client: str = "shop", **body: Any) -> dict[str, Any]:
    """A watch made through POST /v1/watches; returns its JSON."""
    response = await api.create(client, **body)
    assert response.status_code == 201, response.text
    return dict(response.json()["watch"])


async def set_job(
    store: Store, *, job_id: str, items: list[dict[str, Any]], status: str = "processing"
) -> None:
    """Store a polled snapshot of the upstream job (as the poller would) with these items."""
    done = sum(1 for i in items if i.get("status") == "completed")
    failed = sum(1 for i in items if i.get("status") == "failed")
    snapshot = {
        "id": job_id,
        "status": status,
        "total_items": len(items),
        "completed_items": done,
        "failed_items": failed,
        "credits_used": done,
        "items": [{"status": "queued", **item} for item in items],
    }
    async with store.db.engine.begin() as conn:
        await conn.execute(
            update(upstream_jobs)
            .where(upstream_jobs.c.job_id == job_id)
            .values(snapshot=snapshot, last_polled_at=NOW)
        )


async def new_import(api: Api, **body: Any) -> str:
    """An import made through POST /v1/imports; returns its id."""
    body.setdefault("name", "Fall catalog")
    response = await api.http.post("/v1/imports", json=body, headers=api.auth())
    assert response.status_code == 201, response.text
    return str(response.json()["import"]["id"])


async def add_jobs(api: Api, import_id: str, count: int) -> list[dict[str, Any]]:
    """`count` fresh jobs added to the import through the API; returns their watches."""
    response = await api.http.post(
        f"/v1/imports/{import_id}/jobs",
        json={"job_ids": [str(uuid.uuid4()) for _ in range(count)]},
        headers=api.auth(),
    )
    assert response.status_code == 201, response.text
    return list(response.json()["watches"])


async def set_progress(
    store: Store, import_id: str, *, total: int, completed: int, failed: int
) -> None:
    """Mark an import running with these image counts, as the roll-up would leave it."""
    async with store.db.engine.begin() as conn:
        await conn.execute(
            update(imports)
            .where(imports.c.id == import_id)
            .values(
                status="running",
                started=True,
                started_at=NOW - timedelta(hours=1),
                images_total=total,
                images_completed=completed,
                images_failed=failed,
            )
        )


async def seed_failures(store: Store, import_id: str, rows: list[dict[str, Any]]) -> None:
    """Failed images of an import, as the roll-up records them."""
    async with store.db.engine.begin() as conn:
        await conn.execute(
            import_failures.insert(),
            [{"import_id": import_id, "created_at": NOW, **row} for row in rows],
        )


async def seed_polls(store: Store, *, account: str, ats: list[datetime]) -> None:
    """Polls of an account at these moments, as the poller logs them."""
    async with store.db.engine.begin() as conn:
        await conn.execute(
            poll_log.insert(), [{"account": account, "at": at, "client": "shop"} for at in ats]
        )


async def seed_attempt(
    store: Store, *, delivery_id: str, status_code: int | None, error: str | None
) -> None:
    """One recorded attempt of a delivery."""
    async with store.db.engine.begin() as conn:
        await conn.execute(
            insert(delivery_attempts).values(
                delivery_id=delivery_id,
                attempted_at=NOW,
                status_code=status_code,
                error=error,
                duration_ms=42.0,
            )
        )


async def set_delivery(store: Store, delivery_id: str, **values: Any) -> None:
    """Change a stored delivery's columns."""
    async with store.db.engine.begin() as conn:
        await conn.execute(
            update(deliveries).where(deliveries.c.id == delivery_id).values(**values)
        )


async def delivery_row(store: Store, delivery_id: str) -> dict[str, Any]:
    """A stored delivery's columns."""
    async with store.db.engine.connect() as conn:
        row = (await conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))).one()
    return dict(row._mapping)


async def statuses(store: Store, ids: list[str]) -> dict[str, str]:
    """The stored status of each delivery."""
    async with store.db.engine.connect() as conn:
        rows = await conn.execute(
            select(deliveries.c.id, deliveries.c.status).where(deliveries.c.id.in_(ids))
        )
        return {row.id: row.status for row in rows}


def unknown_id(prefix: str) -> str:
    """A well-formed id that names nothing."""
    return new_id(prefix)
