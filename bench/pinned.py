"""Pinned webhooks (a receiver on a DNS name, sent to the address the guard checked) over TLS, with
the connection kept (aiohttp's pool keys it by the TLS name) and closed after each webhook (as
before: `connection: close`); prints one JSON object.

A TLS receiver (uvicorn, a self-signed certificate for the name) runs in a child process, so its
CPU is not the sender's. The name resolves to 127.0.0.1, which the URL guard is told to let
through for this run only. The baseline is raw aiohttp POSTs of the same body to the same
receiver over one kept connection, measured in the same run.

    python bench/pinned.py [--webhooks 500]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.delivery import post, signing, urlguard
from bridge.delivery.channels import Message
from bridge.delivery.channels.webhook import WebhookChannel
from bridge.delivery.http import DeliveryTransport
from tests.certs import write_certificate
from tests.ports import free_port

NAME = "hooks.example.test"
LOOPBACK = ipaddress.ip_address("127.0.0.1")
SERVER = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def hook(request):
    await request.body()
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/in", hook, methods=["POST"])])
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
uvicorn.run(app, host="127.0.0.1", port=port, ssl_certfile=cert, ssl_keyfile=key,
            log_level="warning", lifespan="off")
"""


def message() -> Message:
    payload = {"type": "job.processing", "timestamp": "2026-12-03T12:00:00Z", "data": {"n": 1}}
    return Message(
        delivery_id="dlv_1",
        event_id="evt_1",
        event_type="job.processing",
        timestamp=datetime.now(UTC),
        payload=payload,
        job=None,
        attempt=1,
    )


async def wait_ready(port: int, context: ssl.SSLContext) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname=NAME
            )
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def webhooks(port: int, context: ssl.SSLContext, count: int, *, keep: bool) -> dict[str, Any]:
    post._POOL_KEYED_BY_NAME = keep  # False: every pinned webhook closes its connection, as before

    async def resolve(host: str, _port: int) -> list[str]:
        return ["127.0.0.1"]

    async with httpx.AsyncClient(
        transport=DeliveryTransport(verify=context), trust_env=False
    ) as client:
        channel = WebhookChannel(
            url=f"https://{NAME}:{port}/in?key=1",
            secrets=[signing.new_secret()],
            client=client,
            allowed_hosts=[],
            timeout_s=10,
            user_agent="photo-bridge/bench",
            resolve=resolve,
        )
        await channel.send(message())
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            await channel.send(message())
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "per_second": round(count / elapsed, 1),
        "cpu_ms_per_webhook": round(cpu / count * 1000, 3),
    }


async def raw(port: int, context: ssl.SSLContext, count: int) -> dict[str, Any]:
    body = json.dumps(message().payload).encode()
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(connector=connector) as session:
        url = f"https://127.0.0.1:{port}/in?key=1"
        headers = {"host": f"{NAME}:{port}", "content-type": "application/json"}
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            async with session.post(url, data=body, headers=headers, server_hostname=NAME) as r:
                await r.read()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "per_second": round(count / elapsed, 1),
        "cpu_ms_per_webhook": round(cpu / count * 1000, 3),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    refusal = urlguard._refusal  # let the local receiver past the guard, for this run only
    urlguard._refusal = lambda a: None if a == LOOPBACK else refusal(a)  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as folder:
        cert, key = write_certificate(Path(folder), NAME)
        context = ssl.create_default_context(cafile=str(cert))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(cert), str(key)])
        try:
            await wait_ready(port, context)
            results = {
                "raw_aiohttp_kept_connection": await raw(port, context, args.webhooks),
                "pinned_closing_each": await webhooks(port, context, args.webhooks, keep=False),
                "pinned_keeping": await webhooks(port, context, args.webhooks, keep=True),
            }
        finally:
            server.terminate()
            server.wait(timeout=10)
    keeping, closing = results["pinned_keeping"], results["pinned_closing_each"]
    best = results["raw_aiohttp_kept_connection"]["per_second"]
    return {
        "webhooks": args.webhooks,
        **results,
        "keeping_over_closing": round(keeping["per_second"] / closing["per_second"], 2),
        "keeping_ratio_to_raw": round(keeping["per_second"] / best, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--webhooks", type=int, default=500)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
