"""The signal endpoint does not tell which upstream accounts the bridge has."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from bridge.app import create_app
from bridge.config import parse_config
from bridge.devtools.localserver import serving
from bridge.store import open_store
from tests.integration.test_upstream_signals import _signed

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


async def test_unknown_account_answers_exactly_as_a_known_one_with_a_bad_signature(tmp_path):
    config = parse_config(
        f"""
storage: {{url: "sqlite:///{tmp_path}/b.db"}}
upstream: {{base_url: "http://127.0.0.1:9", accounts: {{main: {{api_key: aigen_live_k}}}}}}
clients: {{shop: {{token: shop-token-123, accounts: [main]}}}}
""",
        env={},
    )
    store = await open_store(config.storage.url)
    app = create_app(config, store=store, now=lambda: T0, background=False)
    body = json.dumps({"job_id": "0b6f4a8e-2f7e-4c1a-9d7e-1c2b3a4d5e6f"}).encode()
    attempts = {
        "no headers": {"Content-Type": "application/json"},
        "stale": _signed(body, key="aigen_live_guess", at=T0 - timedelta(minutes=10)),
        "wrong key": _signed(body, key="aigen_live_guess"),
        "the empty key": _signed(body, key=""),  # what a missing account's key would be
    }
    try:
        async with serving(app) as server, httpx.AsyncClient(base_url=server.url) as client:
            for what, headers in attempts.items():
                answers = [
                    await client.post(f"/upstream/{name}/signals", content=body, headers=headers)
                    for name in ("main", "nope")
                ]
                assert [a.status_code for a in answers] == [401, 401], what
                errors = [{**a.json()["error"], "request_id": ""} for a in answers]
                assert errors[0] == errors[1], what
    finally:
        await store.close()
