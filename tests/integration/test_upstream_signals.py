"""AI Gen Studio's own signed webhook moves the job to the front of the poll queue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from bridge.api.aigen_signature import expected_signature
from bridge.app import create_app
from bridge.config import parse_config
from bridge.devtools.localserver import serving
from bridge.store import open_store
from bridge.store.tables import upstream_jobs

KEY = "aigen_live_signal_key"
JOB = "0b6f4a8e-2f7e-4c1a-9d7e-1c2b3a4d5e6f"
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _signed(body: bytes, *, key: str = KEY, at: datetime = T0, event_id: str = "evt_up_1"):
    timestamp = str(int(at.timestamp()))
    return {
        "X-Aigen-Signature": expected_signature(
            api_key=key, timestamp=timestamp, event_id=event_id, body=body
        ),
        "X-Aigen-Timestamp": timestamp,
        "X-Aigen-Event-Id": event_id,
        "Content-Type": "application/json",
    }


async def test_upstream_signal_puts_a_watched_job_first(tmp_path):
    config = parse_config(
        f"""
storage: {{url: "sqlite:///{tmp_path}/b.db"}}
upstream: {{base_url: "http://127.0.0.1:9", accounts: {{main: {{api_key: {KEY}}}}}}}
clients: {{shop: {{token: shop-token-123, accounts: [main]}}}}
""",
        env={},
    )
    store = await open_store(config.storage.url)
    clock = {"now": T0}
    await store.watches.create(client="shop", account="main", job_id=JOB, webhook_url=None,
                             events=["*"], metadata={}, idempotency_key=None, now=T0,
                             ttl=timedelta(hours=1))  # fmt: skip
    # As if polled once: due again in a minute, no longer first in line.
    async with store.db.engine.begin() as conn:
        await conn.execute(
            sa.update(upstream_jobs).values(priority=0, next_poll_at=T0 + timedelta(minutes=1))
        )
    app = create_app(config, store=store, now=lambda: clock["now"], background=False)
    body = json.dumps({"type": "job.updated", "data": {"job": {"id": JOB.upper()}}}).encode()
    try:
        async with serving(app) as server, httpx.AsyncClient(base_url=server.url) as client:
            ok = await client.post("/upstream/main/signals", content=body, headers=_signed(body))
            assert ok.status_code == 202 and ok.json() == {
                "status": "accepted",
                "polled_soon": True,
            }
            watch = (await store.watches.page(client="shop", status=None, limit=1, cursor=None))[0][
                0
            ]
            assert watch.next_poll_at == T0

            bad = {**_signed(body), "X-Aigen-Signature": "v1=" + "0" * 64}
            stale = _signed(body, at=T0 - timedelta(minutes=10))
            wrong_key = _signed(body, key="aigen_live_other")
            for headers in (bad, stale, wrong_key, {"Content-Type": "application/json"}):
                refused = await client.post("/upstream/main/signals", content=body, headers=headers)
                assert refused.status_code == 401
                assert refused.json()["error"]["code"] == "invalid_signature"
            unknown = await client.post(
                "/upstream/nope/signals", content=body, headers=_signed(body)
            )
            assert unknown.status_code == 401

            other = json.dumps({"job_id": "1b6f4a8e-2f7e-4c1a-9d7e-1c2b3a4d5e6f"}).encode()
            unwatched = await client.post(
                "/upstream/main/signals", content=other, headers=_signed(other)
            )
            assert unwatched.status_code == 202 and unwatched.json()["polled_soon"] is False

            nameless = b'{"type": "job.updated"}'
            missing = await client.post(
                "/upstream/main/signals", content=nameless, headers=_signed(nameless)
            )
            assert missing.status_code == 400 and "body" in missing.json()["error"]["message"]
    finally:
        await store.close()


async def test_upstream_signal_non_ascii_headers_are_401_not_500(tmp_path):
    config = parse_config(
        f"""
storage: {{url: "sqlite:///{tmp_path}/b.db"}}
upstream: {{base_url: "http://127.0.0.1:9", accounts: {{main: {{api_key: {KEY}}}}}}}
clients: {{shop: {{token: shop-token-123, accounts: [main]}}}}
""",
        env={},
    )
    app = create_app(config, now=lambda: T0, background=False)
    body = json.dumps({"job_id": JOB}).encode()
    good = {k: v.encode() for k, v in _signed(body).items()}
    # Raw header bytes: Starlette reads them as latin-1, so b"\xb9" is the superscript digit one.
    variants = [
        {**good, "X-Aigen-Timestamp": b"\xb9"},
        {**good, "X-Aigen-Timestamp": good["X-Aigen-Timestamp"][:-1] + b"\xb2"},
        {**good, "X-Aigen-Timestamp": "\u00b9".encode()},
        {**good, "X-Aigen-Signature": b"v1=\xe9" + b"0" * 63},
        {**good, "X-Aigen-Signature": "v1=\u00e9".encode()},
    ]
    async with serving(app) as server, httpx.AsyncClient(base_url=server.url) as client:
        for headers in variants:
            refused = await client.post("/upstream/main/signals", content=body, headers=headers)
            assert refused.status_code == 401, headers
            assert refused.json()["error"]["code"] == "invalid_signature"
        accepted = await client.post("/upstream/main/signals", content=body, headers=good)
        assert accepted.status_code == 202
        deep = b"[" * 60_000  # signed, but JSON too deep for the parser: a 400, not a crash
        nested = await client.post("/upstream/main/signals", content=deep, headers=_signed(deep))
        assert nested.status_code == 400 and "body" in nested.json()["error"]["message"]
