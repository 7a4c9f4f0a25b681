"""Item thumbnails for the job page, fetched by the bridge so the page loads nothing from another
origin: only from URLs the delivery URL guard allows, only images, at most 2 MiB."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import Response

from bridge.console.context import ThumbnailFetcher, console_of
from bridge.console.page import operator_of
from bridge.console.watch import WATCH_ID
from bridge.events.snapshot import JobSnapshot

log = logging.getLogger(__name__)
MAX_BYTES = 2 * 1024 * 1024
PLACEHOLDER = Path(__file__).with_name("static") / "no-thumbnail.svg"
# Browsers keep both for a while, so a live page's refresh does not fetch each image again.
IMAGE_CACHE = "private, max-age=300"
PLACEHOLDER_CACHE = "private, max-age=60"
# Content is trusted by its first bytes, never by the sender's Content-Type.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_type(data: bytes) -> str | None:
    """The image type the bytes start with (PNG, JPEG, GIF, WebP, AVIF), else None."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    return None


def _pinned(
    url: str, addresses: Sequence[object]
) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The request to make: to the first checked address when the check resolved the host, so a
    DNS answer that changes after the check (rebinding) cannot point the fetch elsewhere."""
    parsed = httpx.URL(url)
    if not addresses:
        return parsed, {}, {}
    headers = {"host": parsed.netloc.decode("ascii"), "connection": "close"}
    extensions = {"sni_hostname": parsed.raw_host.decode("ascii")}
    return parsed.copy_with(host=str(addresses[0])), headers, extensions


def thumbnail_fetcher(
    *, check: Callable[[str], Awaitable[Sequence[object]]], timeout_s: float = 5.0
) -> ThumbnailFetcher:
    """A fetcher that lets `check` refuse the URL (raising) or return the addresses it checked,
    then reads at most MAX_BYTES within `timeout_s` in all."""

    async def fetch(url: str) -> tuple[bytes, str] | None:
        try:
            async with asyncio.timeout(timeout_s):
                target, headers, extensions = _pinned(url, await check(url))
                async with (
                    httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as http,
                    http.stream("GET", target, headers=headers, extensions=extensions) as response,
                ):
                    if response.status_code != 200:
                        return None
                    data = b""
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) > MAX_BYTES:
                            return None
        except Exception as exc:  # any refusal, timeout or network failure shows the placeholder
            log.info("thumbnail not fetched", extra={"error": type(exc).__name__})
            return None
        kind = image_type(data)
        return (data, kind) if kind else None

    return fetch


async def thumbnail(request: Request) -> Response:
    """GET /console/watches/{watch_id}/items/{item_id}/thumbnail: the item's image, or the
    placeholder image (200, image/svg+xml) when there is none to show."""
    operator_of(request)
    console = console_of(request)
    watch_id = request.path_params["watch_id"]
    item_id = request.path_params["item_id"]
    record = (
        await console.store.watches.get(watch_id=watch_id) if WATCH_ID.fullmatch(watch_id) else None
    )
    job = JobSnapshot.from_dict(record.job) if record and record.job else None
    url = next((i.thumbnail_url for i in job.items if i.id == item_id), None) if job else None
    found = await console.fetch_thumbnail(url) if url else None
    if found is None:
        return Response(
            PLACEHOLDER.read_bytes(),
            media_type="image/svg+xml",
            headers={"Cache-Control": PLACEHOLDER_CACHE},
        )
    data, kind = found
    return Response(data, media_type=kind, headers={"Cache-Control": IMAGE_CACHE})
