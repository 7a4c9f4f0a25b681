"""Schemathesis over the running API: every operation, positive and negative data, bounded.

The schema is loaded from the server's own /openapi.json; each generated request carries a valid
bearer token: an operator's on /v1/ops, a client's elsewhere. The checks: no 5xx, only documented status codes, responses matching their schema,
documented content types and headers. Schemathesis is synchronous (requests), so it runs in a
worker thread while the server keeps serving in the test's event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

from bridge.api.ratelimit import RateLimiter
from bridge.api.routes import OPERATIONS
from tests.integration.api_support import TOKENS, running_api

MAX_EXAMPLES = 30
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]
SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _exercise(
    operation: Any, mode: GenerationMode, headers: dict[str, str], path: dict[str, str]
) -> str | None:
    """Run one operation in one generation mode; return the failure text, if any."""

    @SETTINGS
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if case.path_parameters is not None:
            case.path_parameters = {**case.path_parameters, **path}
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=10)

    try:
        run()
    except (Exception, FailureGroup) as exc:  # FailureGroup is a BaseExceptionGroup
        return f"{operation.label} [{mode.value}]: {exc}"
    return None


def _headers(path: str) -> dict[str, str]:
    """The bearer token the operation takes: the operator's on /v1/ops, else a client's."""
    who = "ops" if path.startswith("/v1/ops/") else "shop"
    return {"Authorization": f"Bearer {TOKENS[who]}"}


def _fuzz(
    base_url: str, *, codec: str | None = None, only: str = "", account: str | None = None
) -> tuple[set[str], list[str]]:
    """Exercise the served schema's operations whose label starts with `only`; return (operation
    labels, failures). `codec="latin-1"` also sends header bytes beyond ASCII, as a server reads
    them; `account` pins the upstream account in the path, so signals reach the signature check."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=10)
    if codec is not None:
        schema.config.generation.update(codec=codec)
    path = {"account": account} if account is not None else {}
    operations = [
        op for result in schema.get_all_operations() if (op := result.ok()).label.startswith(only)
    ]
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := _exercise(operation, mode, _headers(operation.path), path)) is not None
    ]
    return {operation.label for operation in operations}, failures


async def test_api_schemathesis_finds_no_failures(tmp_path: Path) -> None:
    unlimited = RateLimiter(rate_per_s=1e9, burst=10**9)
    async with running_api(
        f"sqlite:///{tmp_path}/bridge.db", rate_limiter=unlimited, background=True
    ) as api:
        operations, failures = await asyncio.to_thread(_fuzz, api.url)
    assert failures == [], "\n\n".join(failures)
    # Schemathesis leaves out the schema's own URL; every other operation was exercised.
    assert operations == {f"{op.method} {op.path}" for op in OPERATIONS} - {"GET /openapi.json"}


async def test_api_schemathesis_upstream_signal_with_latin1_headers(tmp_path: Path) -> None:
    # Servers read header bytes as latin-1, so the signal's headers are fuzzed with all of it, on an
    # account that exists so the signature check runs (the reported crashes: test_upstream_signals).
    unlimited = RateLimiter(rate_per_s=1e9, burst=10**9)
    async with running_api(f"sqlite:///{tmp_path}/bridge.db", rate_limiter=unlimited) as api:
        operations, failures = await asyncio.to_thread(
            _fuzz, api.url, codec="latin-1", only="POST /upstream/", account="main"
        )
    assert failures == [], "\n\n".join(failures)
    assert operations == {"POST /upstream/{account}/signals"}
