"""The /_sim/ endpoints: the Simulator's control API over HTTP, for out-of-process tests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.devtools.simulator.responses import error_response, json_response, simulator
from bridge.devtools.simulator.settings import DEFAULT_KEY


class CreateJobControl(BaseModel):
    """Body of POST /_sim/jobs; api_key defaults to the only (or the default) key."""

    api_key: str | None = None
    total_items: int
    external_ids: list[str | None] | None = None
    job_id: str | None = None
    webhook_url: str | None = None


class ScriptControl(BaseModel):
    """Body of POST /_sim/script."""

    job_id: str | None = None
    api_key: str | None = None
    responses: list[dict[str, Any]]


def control_routes() -> list[BaseRoute]:
    """Return the /_sim/ routes (no auth: the simulator is for tests)."""
    return [
        Route("/_sim/jobs", create_job, methods=["POST"]),
        Route("/_sim/jobs/{job_id}", peek_job, methods=["GET"]),
        Route("/_sim/jobs/{job_id}", set_job, methods=["PUT"]),
        Route("/_sim/script", script, methods=["POST"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/reset", reset, methods=["POST"]),
    ]


async def create_job(request: Request) -> Response:
    """POST /_sim/jobs: create a job directly, bypassing creation limits."""
    sim = simulator(request)
    try:
        body = CreateJobControl.model_validate_json(await request.body())
        keys = list(sim.settings.keys)
        api_key = body.api_key or (keys[0] if len(keys) == 1 else DEFAULT_KEY)
        job_id = sim.create_job(
            api_key,
            total_items=body.total_items,
            external_ids=body.external_ids,
            job_id=body.job_id,
            webhook_url=body.webhook_url,
        )
    except (ValidationError, ValueError) as exc:
        return error_response(request, 400, message=_message(exc))
    return json_response(request, {"job_id": job_id, "job": sim.peek(job_id)}, status=201)


async def peek_job(request: Request) -> Response:
    """GET /_sim/jobs/{id}: the job's current body, without counting a poll."""
    try:
        job = simulator(request).peek(request.path_params["job_id"])
    except KeyError:
        return error_response(request, 404)
    return json_response(request, {"job": job})


async def set_job(request: Request) -> Response:
    """PUT /_sim/jobs/{id}: freeze the job at exactly the given JSON body."""
    try:
        job = await request.json()
    except ValueError:
        return error_response(request, 400, message="The body must be a JSON object.")
    if not isinstance(job, dict):
        return error_response(request, 400, message="The body must be a JSON object.")
    try:
        simulator(request).set_job(request.path_params["job_id"], job)
    except KeyError:
        return error_response(request, 404)
    return json_response(request, {"job": job})


async def script(request: Request) -> Response:
    """POST /_sim/script: queue scripted responses for a job or a key."""
    try:
        body = ScriptControl.model_validate_json(await request.body())
        simulator(request).script(body.job_id, body.responses, api_key=body.api_key)
    except (ValidationError, ValueError) as exc:
        return error_response(request, 400, message=_message(exc))
    return json_response(request, {"queued": len(body.responses)})


async def stats(request: Request) -> Response:
    """GET /_sim/stats: polls per key and GETs per job."""
    return json_response(request, simulator(request).stats())


async def reset(request: Request) -> Response:
    """POST /_sim/reset: forget every job, script and usage record."""
    simulator(request).reset()
    return json_response(request, {"reset": True})


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
    return str(exc)
