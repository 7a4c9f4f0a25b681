"""The upstream endpoints: GET one job, list jobs, create a job, list operations and presets."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.devtools.simulator.catalog import OPERATIONS, PRESETS
from bridge.devtools.simulator.creation import BadRequest, parse_creation
from bridge.devtools.simulator.progress import JOB_STATUSES
from bridge.devtools.simulator.refusal import Refusal
from bridge.devtools.simulator.responses import error_response, json_response, simulator
from bridge.devtools.simulator.state import Simulator

GARBAGE = b'{"job": {"id": "<html><body>upstream hiccup'


def upstream_routes() -> list[BaseRoute]:
    """Return the routes of the upstream Product Photo API."""
    return [
        Route("/product-photo-jobs", list_jobs, methods=["GET"]),
        Route("/product-photo-jobs", create_job, methods=["POST"]),
        Route("/product-photo-jobs/{job_id}", get_job, methods=["GET"]),
        Route("/product-photo-operations", list_operations, methods=["GET"]),
        Route("/product-photo-presets", list_presets, methods=["GET"]),
    ]


def bearer_key(request: Request) -> str | None:
    """Return the API key of `Authorization: Bearer <key>`, or None."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


async def get_job(request: Request) -> Response:
    """GET /product-photo-jobs/{jobId}: the job at this instant, or a scripted answer."""
    sim, key = simulator(request), bearer_key(request)
    if key is None or not sim.knows(key):
        return error_response(request, 401)
    job_id: str = request.path_params["job_id"]
    retry = sim.admit_poll(key, job_id=job_id)
    if retry is not None:
        return error_response(request, 429, headers=sim.rate_headers(key), retry_after=retry)
    scripted = sim.next_script(key, job_id)
    if scripted is not None:
        return await _scripted(request, sim, key=key, job_id=job_id, entry=scripted)
    return _job_answer(request, sim, key=key, job_id=job_id)


def _job_answer(request: Request, sim: Simulator, *, key: str, job_id: str) -> Response:
    headers = sim.rate_headers(key)
    try:
        canonical = str(uuid.UUID(job_id))
    except ValueError:
        return error_response(request, 400, message="jobId must be a UUID.", headers=headers)
    job = sim.job_for(key, canonical)
    if job is None:
        return error_response(request, 404, headers=headers)
    return json_response(request, {"job": job}, headers=headers)


async def _scripted(
    request: Request, sim: Simulator, *, key: str, job_id: str, entry: dict[str, Any]
) -> Response:
    if entry.get("delay_s"):
        await asyncio.sleep(float(entry["delay_s"]))
    headers = sim.rate_headers(key)
    status = int(entry.get("status", 200))
    if status != 200:
        retry = entry.get("retry_after")
        return error_response(request, status, headers=headers, retry_after=retry)
    if entry.get("garbage"):
        return Response(GARBAGE, 200, headers=headers, media_type="application/json")
    if "job" in entry:
        sim.freeze_scripted(key, job_id, entry["job"])
        return json_response(request, {"job": entry["job"]}, headers=headers)
    return _job_answer(request, sim, key=key, job_id=job_id)


async def list_jobs(request: Request) -> Response:
    """GET /product-photo-jobs?limit=&cursor=&status=: the key's jobs, newest first."""
    sim, key = simulator(request), bearer_key(request)
    if key is None or not sim.knows(key):
        return error_response(request, 401)
    retry = sim.admit_poll(key, job_id=None)
    headers = sim.rate_headers(key)
    if retry is not None:
        return error_response(request, 429, headers=headers, retry_after=retry)
    try:
        limit, cursor, status = _list_query(request)
    except ValueError as exc:
        return error_response(request, 400, message=str(exc), headers=headers)
    jobs, next_cursor = sim.list_jobs(key, limit=limit, cursor=cursor, status=status)
    return json_response(request, {"jobs": jobs, "next_cursor": next_cursor}, headers=headers)


def _list_query(request: Request) -> tuple[int, datetime | None, str | None]:
    query = request.query_params
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        raise ValueError("limit must be an integer from 1 to 100.") from None
    if not 1 <= limit <= 100:
        raise ValueError("limit must be an integer from 1 to 100.")
    cursor = None
    if query.get("cursor"):
        try:
            cursor = datetime.fromisoformat(query["cursor"])
        except ValueError:
            raise ValueError("cursor must be an RFC 3339 date-time.") from None
        if cursor.tzinfo is None:
            raise ValueError("cursor must be an RFC 3339 date-time with a time zone.")
    status = query.get("status") or None
    if status is not None and status not in JOB_STATUSES:
        raise ValueError(f"status must be one of {', '.join(JOB_STATUSES)}.")
    return limit, cursor, status


async def create_job(request: Request) -> Response:
    """POST /product-photo-jobs: create a job of 1 to 20 images, idempotently (201, or 200 with
    the job an earlier request with the same Idempotency-Key and body created)."""
    sim, key = simulator(request), bearer_key(request)
    if key is None or not sim.knows(key):
        return error_response(request, 401)
    headers = sim.rate_headers(key)
    idempotency_key = request.headers.get("idempotency-key", "").strip()
    try:
        wanted = parse_creation(await request.body(), idempotency_key=idempotency_key)
        job, created = sim.submit(key, idempotency_key=idempotency_key, request=wanted)
    except BadRequest as exc:
        return error_response(request, 400, message=str(exc), headers=headers)
    except Refusal as refusal:
        return error_response(
            request,
            refusal.status,
            code=refusal.code,
            message=refusal.message,
            headers=headers,
            retry_after=refusal.retry_after,
        )
    body = {"job": job, "remaining_paid_credits": sim.remaining_paid_credits(key)}
    return json_response(request, body, status=201 if created else 200, headers=headers)


async def list_operations(request: Request) -> Response:
    """GET /product-photo-operations: the billable operation ids and their credit cost."""
    sim, key = simulator(request), bearer_key(request)
    if key is None or not sim.knows(key):
        return error_response(request, 401)
    return json_response(request, {"operations": list(OPERATIONS)})


async def list_presets(request: Request) -> Response:
    """GET /product-photo-presets: the preset ids a job may name (public, as upstream's is)."""
    return json_response(request, {"presets": list(PRESETS)})
