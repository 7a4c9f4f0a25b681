"""Operator endpoints: /healthz (alive), /readyz (storage takes writes, scheduler runs), /metrics."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from bridge.api.context import api_of, json_response
from bridge.api.schemas import Health, Readiness
from bridge.store.faults import storage_fault

PING_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    """The process is up and serving."""
    return json_response(Health(status="ok"))


async def _storage_check(request: Request) -> str:
    """ "ok" when storage takes a write within the timeout, else the fault in a few words; the
    store logs each change of fault with the path or URL."""
    try:
        async with asyncio.timeout(PING_TIMEOUT_S):
            await api_of(request).store.ping()
    except TimeoutError:
        return "timed out"
    except Exception as exc:  # any driver error means "not ready", never a 500
        return storage_fault(exc) or "unreachable"
    return "ok"


async def readyz(request: Request) -> Response:
    """200 when storage takes a write and the scheduler runs, else 503 saying which check failed."""
    checks = {
        "storage": await _storage_check(request),
        "scheduler": "ok" if api_of(request).scheduler_running() else "not running",
    }
    ready = all(value == "ok" for value in checks.values())
    body = Readiness(status="ok" if ready else "unavailable", checks=checks)
    return json_response(body, status=200 if ready else 503)


async def metrics(request: Request) -> Response:
    """Every counter of this bridge in the Prometheus text format."""
    registry = api_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
