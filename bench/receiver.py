"""The benches' verifying webhook receiver, in a process of its own (its CPU is not the bridge's).

It checks every POST's Standard Webhooks signature (`standardwebhooks`' Webhook.verify, as a
client would), answers 200 to a good one and 401 to a bad one, and notes for each `webhook-id`
its first arrival (an arrival counter, the wall time, the event's watch and sequence) and how many
times it came. `POST /arrivals` hands those over and forgets them.

    with receiving(secret) as url: ...   # url + "/hook" takes webhooks
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


@dataclass(frozen=True)
class Arrival:
    """The first arrival of one webhook-id, and how many times it came."""

    index: int  # arrival order across all webhooks
    at: float  # wall time (time.time()) of the first arrival
    watch_id: str
    sequence: int
    count: int


def serve(secret: str) -> None:
    """The child process: verify and note every webhook; print the URL once ready."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from bridge.devtools.localserver import serving

    verifier = Webhook(secret)
    arrivals: dict[str, list[Any]] = {}
    state = {"index": 0, "refused": 0}

    async def hook(request: Request) -> Response:
        body = await request.body()
        try:
            event = verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            state["refused"] += 1
            return PlainTextResponse("bad signature", status_code=401)
        key = request.headers["webhook-id"]
        seen = arrivals.get(key)
        if seen is not None:
            seen[4] += 1
        else:
            data = event.get("data") or {}
            state["index"] += 1
            arrivals[key] = [
                state["index"],
                time.time(),
                data.get("watch_id"),
                data.get("sequence"),
                1,
            ]
        return PlainTextResponse("ok")

    async def take(request: Request) -> Response:
        taken = {"arrivals": dict(arrivals), "refused": state["refused"]}
        arrivals.clear()
        state["refused"] = 0
        return JSONResponse(taken)

    async def run() -> None:
        routes = [
            Route("/hook", hook, methods=["POST"]),
            Route("/arrivals", take, methods=["POST"]),
        ]
        async with serving(Starlette(routes=routes)) as server:
            print(server.url, flush=True)
            await asyncio.Event().wait()

    asyncio.run(run())


@contextlib.contextmanager
def receiving(secret: str) -> Iterator[str]:
    """Run the receiver in a child process for the block; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.receiver", secret],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError("the receiver did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def take_arrivals(http: httpx.AsyncClient, url: str) -> tuple[dict[str, Arrival], int]:
    """What arrived since the last call (by webhook-id), and how many signatures were refused."""
    response = await http.post(url + "/arrivals")
    response.raise_for_status()
    taken = response.json()
    arrivals = {key: Arrival(*value) for key, value in taken["arrivals"].items()}
    return arrivals, int(taken["refused"])


if __name__ == "__main__":
    serve(sys.argv[1])
