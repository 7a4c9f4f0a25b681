"""PostgreSQL finds a claim's and a record's rows by key, whatever its statistics say.

Right after a burst (a fresh database, or thousands queued since the last ANALYZE) the planner
takes `status = 'pending'` for a row or two. A statement that tested it beside its ids scanned
every pending delivery through ix_deliveries_due and joined that to the batch: a record of 14 at
2,000 pending took 6.8 ms instead of 0.7. The statements the outbox really sends, caught as it
sends them, are explained here on a never-analysed outbox of 1,000 pending deliveries.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from bridge.store import Store, open_store
from bridge.store.outbox import AttemptResult
from tests.integration.outbox_rows import add_events, add_watch

AT = datetime(2026, 12, 3, 12, tzinfo=UTC)


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


async def _explained(store: Store, sent: list[tuple[str, Any]]) -> list[list[dict[str, Any]]]:
    plans = []
    async with store.db.engine.connect() as conn:
        for statement, parameters in sent:
            found = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            [[document]] = found.all()
            plan = document if isinstance(document, list) else json.loads(document)
            plans.append(_nodes(plan[0]["Plan"]))
    return plans


async def test_claims_and_records_find_their_rows_by_key_on_a_fresh_outbox(pg_url: str) -> None:
    store = await open_store(pg_url)
    try:
        for _ in range(20):  # 20 streams of 50 events: 20 heads among 1,000 pending rows
            watch = await add_watch(store, at=AT, webhook_url="https://hooks.example/in")
            await add_events(store, watch, count=50, at=AT)

        sent: list[tuple[str, Any]] = []

        def caught(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "FOR UPDATE" in statement:  # the lease and the record lock their rows
                sent.append((statement, parameters))

        event.listen(store.db.engine.sync_engine, "before_cursor_execute", caught)
        claimed = await store.outbox.claim_due(now=AT, owner="me", lease_s=30, limit=20)
        assert len(claimed) == 20
        results = [AttemptResult(row.id, AT, 1.0, "delivered", status_code=200) for row in claimed]
        await store.outbox.record_attempts(results, now=AT, owner="me")
        event.remove(store.db.engine.sync_engine, "before_cursor_execute", caught)

        assert len(sent) == 2
        for nodes in await _explained(store, sent):
            used = {node.get("Index Name") for node in nodes}
            assert "ix_deliveries_due" not in used, nodes
            assert "deliveries_pkey" in used, nodes  # each row updated is found by its key
    finally:
        await store.close()
