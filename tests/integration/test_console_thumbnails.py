"""Item thumbnails through the console over real servers: the bridge fetches an image from an
allowed host and answers its bytes; anything that is not an image, too large, or from a host the
delivery URL guard refuses gets the placeholder image (answered in place, cached a minute)."""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bridge.config import Config
from bridge.console.routes import STATIC_DIR
from bridge.devtools.localserver import serving
from tests.integration.console_support import (
    browser,
    new_watch,
    running_console,
    set_job,
)

PLACEHOLDER = "/console/static/no-thumbnail.svg"
PLACEHOLDER_SVG = (STATIC_DIR / "no-thumbnail.svg").read_bytes()
MAX_BYTES = 2 * 1024 * 1024


def tiny_png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x80\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = tiny_png()
PNG_SIGNATURE = PNG[:8]


@dataclass
class Images:
    """An image host: what it serves, and which paths were asked for."""

    url: str
    hits: Counter[str]


def _image_app(hits: Counter[str]) -> Starlette:
    def answer(body: bytes, media_type: str) -> Response:
        return Response(body, media_type=media_type)

    served = {
        "/tiny.png": lambda: answer(PNG, "image/png"),
        "/labelled-html.png": lambda: answer(PNG, "text/html"),  # the bytes decide, not the label
        "/page.html": lambda: answer(b"<!doctype html><p>not an image</p>", "text/html"),
        "/lying.png": lambda: answer(b"<html><script>alert(1)</script></html>", "image/png"),
        "/limit.png": lambda: answer(PNG_SIGNATURE + b"\0" * (MAX_BYTES - 8), "image/png"),
        "/huge.png": lambda: answer(PNG_SIGNATURE + b"\0" * (MAX_BYTES - 7), "image/png"),
        "/gone.png": lambda: Response(b"", status_code=404),
        "/moved.png": lambda: RedirectResponse("/tiny.png", status_code=302),
    }

    async def serve(request: Request) -> Response:
        hits[request.url.path] += 1
        return served[request.url.path]()

    return Starlette(routes=[Route(path, serve) for path in served])


@contextlib.asynccontextmanager
async def image_host() -> AsyncIterator[Images]:
    hits: Counter[str] = Counter()
    async with serving(_image_app(hits)) as server:
        yield Images(url=server.url, hits=hits)


def _allow(*hosts: str) -> Callable[[Config], Config]:
    def edit(config: Config) -> Config:
        delivery = config.delivery.model_copy(update={"allowed_hosts": list(hosts)})
        return config.model_copy(update={"delivery": delivery})

    return edit


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bridge.db"


async def test_console_thumbnails_serve_images_and_placeholders(sqlite_url: str) -> None:
    async with image_host() as allowed, image_host() as elsewhere:
        host = allowed.url.removeprefix("http://")
        async with running_console(sqlite_url, edit_config=_allow(host)) as console:
            urls = {
                "ok": f"{allowed.url}/tiny.png",
                "labelled-html": f"{allowed.url}/labelled-html.png",
                "limit": f"{allowed.url}/limit.png",
                "page": f"{allowed.url}/page.html",
                "lying": f"{allowed.url}/lying.png",
                "huge": f"{allowed.url}/huge.png",
                "gone": f"{allowed.url}/gone.png",
                "moved": f"{allowed.url}/moved.png",
                "other-port": f"{elsewhere.url}/tiny.png",
                "private": "http://10.0.0.1/x.png",
                "internal": "https://internal.example.com/x.png",
            }
            watch = await new_watch(console.api)
            await set_job(
                console.store,
                job_id=watch["job_id"],
                items=[{"id": k, "thumbnail_url": u} for k, u in urls.items()] + [{"id": "bare"}],
            )
            base = f"/console/watches/{watch['id']}/items"
            answers = {
                item: await console.http.get(f"{base}/{item}/thumbnail")
                for item in [*urls, "bare", "unknown"]
            }
            placeholder = await console.http.get(PLACEHOLDER)
            async with browser(console.api) as signed_out:
                refused = await signed_out.get(f"{base}/ok/thumbnail")
    ok = answers.pop("ok")
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "image/png"
    assert ok.content == PNG
    assert "default-src 'self'" in ok.headers["content-security-policy"]
    labelled = answers.pop("labelled-html")
    assert (labelled.headers["content-type"], labelled.content) == ("image/png", PNG)
    limit = answers.pop("limit")
    assert (limit.status_code, len(limit.content)) == (200, MAX_BYTES)
    assert ok.headers["cache-control"] == "private, max-age=300"
    for item, answer in answers.items():
        assert answer.status_code == 200, item
        assert answer.headers["content-type"].startswith("image/svg+xml"), item
        assert answer.content == PLACEHOLDER_SVG, item
        assert answer.headers["cache-control"] == "private, max-age=60", item
    assert placeholder.status_code == 200
    assert placeholder.content == PLACEHOLDER_SVG
    # The guard refused the unlisted port before any request was made; redirects are not followed.
    assert elsewhere.hits == Counter()
    assert allowed.hits["/moved.png"] == 1
    assert allowed.hits["/tiny.png"] == 1  # only the "ok" item's own fetch
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/console/login")
