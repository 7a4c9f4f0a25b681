"""An import's failures over a real server: JSON pages, a CSV streamed in chunks, CSV injection
defused, and hostile strings returned as data."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import pytest

from bridge.events.failures_csv import csv_cell as csv_safe
from bridge.store import Store
from bridge.store.tables import import_failures
from tests.integration.api_support import NOW, Api, running_api

HEADER = "external_id,job_id,item_id,error_code,error_message\r\n"
HOSTILE = [
    '=HYPERLINK("http://evil.example","x")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\tindented",
    "\rreturned",
    '<script>alert("x")</script>',
    'say "hi", then\nleave',
    "plain",
]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bridge.db"


async def _seed(store: Store, import_id: str, rows: list[dict[str, Any]]) -> None:
    async with store.db.engine.begin() as conn:
        await conn.execute(
            import_failures.insert(),
            [{"import_id": import_id, "created_at": NOW, **row} for row in rows],
        )


def _rows(n: int, *, job_id: str, message: str = "image unreadable") -> list[dict[str, Any]]:
    return [
        {
            "job_id": job_id,
            "item_id": f"item-{i:06d}",
            "external_id": f"sku-{i:06d}",
            "error_code": "unreadable_image",
            "error_message": message,
        }
        for i in range(n)
    ]


async def _new_import(api: Api, **body: Any) -> str:
    body.setdefault("name", "Fall catalog")
    response = await api.http.post("/v1/imports", json=body, headers=api.auth())
    assert response.status_code == 201, response.text
    return str(response.json()["import"]["id"])


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@A1", "'@A1"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        ("", ""),
        (None, ""),
    ],
)
def test_csv_safe_quotes_formula_starts(value: str | None, cell: str) -> None:
    assert csv_safe(value) == cell


async def test_api_import_failures_json_pages(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        import_id = await _new_import(api)
        job_id = str(uuid.uuid4())
        await _seed(api.store, import_id, _rows(5, job_id=job_id))
        seen: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(5):
            query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
            response = await api.http.get(
                f"/v1/imports/{import_id}/failures{query}", headers=api.auth()
            )
            assert response.status_code == 200
            body = response.json()
            seen += body["failures"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert [f["external_id"] for f in seen] == [f"sku-{i:06d}" for i in range(5)]
        assert seen[0] == {
            "job_id": job_id,
            "item_id": "item-000000",
            "external_id": "sku-000000",
            "error_code": "unreadable_image",
            "error_message": "image unreadable",
        }
        for query, field in (
            ("?cursor=abc", "cursor"),
            ("?limit=0", "limit"),
            ("?limit=1001", "limit"),
            ("?format=xml", "format"),
        ):
            bad = await api.http.get(f"/v1/imports/{import_id}/failures{query}", headers=api.auth())
            assert bad.status_code == 400
            assert bad.json()["error"]["message"].startswith(f"{field}: ")


async def test_api_import_failures_csv_streams_in_chunks(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        import_id = await _new_import(api)
        job_id = str(uuid.uuid4())
        count = 4000
        await _seed(api.store, import_id, _rows(count, job_id=job_id, message="x" * 200))
        chunks = 0
        body = b""
        async with api.http.stream(
            "GET", f"/v1/imports/{import_id}/failures", headers=api.auth(Accept="text/csv")
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/csv; charset=utf-8"
            assert response.headers["transfer-encoding"] == "chunked"
            assert "content-length" not in response.headers
            assert response.headers["content-disposition"] == (
                f'attachment; filename="{import_id}-failures.csv"'
            )
            async for chunk in response.aiter_raw():
                chunks += 1
                body += chunk
        # The store is read 500 rows at a time and each batch is sent as it is read: the response
        # arrives in many pieces, never built whole first.
        assert chunks > 4
        text = body.decode()
        assert text.startswith(HEADER)
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) == count + 1
        assert rows[1] == ["sku-000000", job_id, "item-000000", "unreadable_image", "x" * 200]
        assert rows[-1][0] == f"sku-{count - 1:06d}"


async def test_api_import_failures_csv_by_format_and_accept(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        import_id = await _new_import(api)
        await _seed(api.store, import_id, _rows(2, job_id=str(uuid.uuid4())))
        path = f"/v1/imports/{import_id}/failures"
        by_format = await api.http.get(f"{path}?format=csv", headers=api.auth())
        by_accept = await api.http.get(
            path, headers=api.auth(Accept="application/json;q=0.5, text/csv")
        )
        assert by_format.text == by_accept.text
        assert by_format.text.startswith(HEADER) and by_format.text.count("\r\n") == 3
        forced_json = await api.http.get(f"{path}?format=json", headers=api.auth(Accept="text/csv"))
        assert forced_json.headers["content-type"] == "application/json"
        assert len(forced_json.json()["failures"]) == 2


async def test_api_import_hostile_strings_come_back_as_data(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        metadata = {f"k{i}": value for i, value in enumerate(HOSTILE)}
        import_id = await _new_import(api, name=HOSTILE[6], metadata=metadata)
        found = await api.http.get(f"/v1/imports/{import_id}", headers=api.auth())
        assert found.headers["content-type"] == "application/json"
        assert found.headers["x-content-type-options"] == "nosniff"
        assert found.json()["import"]["name"] == HOSTILE[6]
        assert found.json()["import"]["metadata"] == metadata
        # Returned as the client sent it, as JSON data with nosniff: never as markup to run.
        assert found.json()["import"]["metadata"]["k6"] == '<script>alert("x")</script>'
        job_id = str(uuid.uuid4())
        await _seed(
            api.store,
            import_id,
            [
                {
                    "job_id": job_id,
                    "item_id": f"item-{i}",
                    "external_id": value,
                    "error_code": value,
                    "error_message": value,
                }
                for i, value in enumerate(HOSTILE)
            ],
        )
        listed = await api.http.get(f"/v1/imports/{import_id}/failures", headers=api.auth())
        assert [f["external_id"] for f in listed.json()["failures"]] == HOSTILE
        text = (
            await api.http.get(f"/v1/imports/{import_id}/failures?format=csv", headers=api.auth())
        ).text
        rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
        expected = [csv_safe(value) for value in HOSTILE]
        assert [r[0] for r in rows] == expected
        assert [r[4] for r in rows] == expected
        assert all(
            not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r
        )
        assert rows[7][0] == 'say "hi", then\nleave'  # quotes, commas and newlines round-trip
