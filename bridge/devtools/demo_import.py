"""run_import_demo(): a catalog import of a few jobs on embedded defaults, told as one story.

Like `run_demo`, everything runs on 127.0.0.1 through the same code paths as `serve`: the simulator
stands in for AI Gen Studio, SQLite lives in a temporary folder, and the local receiver verifies
every webhook. The jobs are created on the simulator, an import with `expected_jobs` is created on
the bridge's API and the jobs added to it; the import's progress line is printed as it moves, its
events as the receiver gets them, then its failures CSV and a summary.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from typing import Any

import httpx

from bridge.app import create_app
from bridge.delivery.signing import new_secret
from bridge.devtools.demo import DEMO_KEY, DEMO_TOKEN, Receiver, demo_config
from bridge.devtools.localserver import serving
from bridge.devtools.simulator import KeyLimits, SimulatorSettings, create_simulator

DEADLINE_S = 55.0
BAR = 24


def progress_line(imp: dict[str, Any]) -> str:
    """One line that says how far the import is: a bar, jobs, images, rate and ETA."""
    images = imp["images"]
    total = images["total"] or 1
    done = images["completed"] + images["failed"]
    filled = round(BAR * done / total)
    rate = imp["rate_images_per_hour"]
    jobs = imp["jobs"]
    ended = jobs["total"] - jobs["active"]
    return (
        f"  [{'#' * filled}{'.' * (BAR - filled)}] {imp['status']:<19} "
        f"jobs {ended}/{jobs['total']}  images {images['completed']} ok, {images['failed']} failed, "
        f"{images['pending']} pending  "
        f"rate {f'{rate:.0f}/h' if rate is not None else '-'}  eta {(imp['eta'] or '-')[:19]}"
        f"{'  STALLED' if imp['stalled'] else ''}"
    )


def _create_jobs(sim: Any, *, jobs: int, items: int, signals_url: str) -> list[str]:
    """The catalog's jobs, created straight on the simulator: the upstream's creation API allows
    2 active jobs per account, and a catalog's jobs queue behind each other for days."""
    return [
        str(
            sim.create_job(
                DEMO_KEY,
                total_items=items,
                external_ids=[f"spring-{j}-{n:02d}" for n in range(1, items + 1)],
                webhook_url=signals_url,
            )
        )
        for j in range(1, jobs + 1)
    ]


async def _follow(api: httpx.AsyncClient, import_id: str, receiver: Receiver) -> dict[str, Any]:
    """Print the import's progress line whenever it changes, until it ended and its own
    webhook deliveries settled."""
    deadline = time.monotonic() + DEADLINE_S
    last: tuple[object, ...] = ()
    while time.monotonic() < deadline:
        imp = (await api.get(f"/v1/imports/{import_id}")).json()["import"]
        moved = (imp["status"], imp["stalled"], *imp["jobs"].values(), *imp["images"].values())
        if moved != last:  # the rate and ETA move every instant; print when the counts do
            print(progress_line(imp))
            last = moved
        finals = [e for e in receiver.events if e["type"].startswith("import.")]
        if imp["ended_at"] and finals and finals[-1]["type"] == f"import.{imp['status']}":
            return dict(imp)
        await asyncio.sleep(0.25)
    raise TimeoutError(f"the demo import did not finish within {DEADLINE_S:.0f} s")


async def run_import_demo(*, jobs: int = 4, items: int = 5, seconds_per_item: float = 0.6) -> int:
    """Run the import demo; print progress, events, failures and a summary; return the exit code."""
    secret = new_secret()
    receiver = Receiver(secret)
    sim = create_simulator(
        SimulatorSettings(
            keys={
                DEMO_KEY: KeyLimits(polls_per_hour=7200, max_active_jobs=2, creations_per_hour=100)
            },
            queue_delay_s=0.5,
            seconds_per_item=seconds_per_item,
            failure_rate=0.15,
            seed=5,
        )
    )
    with tempfile.TemporaryDirectory(prefix="photo-bridge-demo-") as folder:
        async with serving(sim) as upstream, serving(receiver.app()) as hooks:
            config = demo_config(
                upstream_url=upstream.url, db_path=f"{folder}/demo.db", secret=secret
            )
            async with (
                serving(create_app(config)) as bridge,
                httpx.AsyncClient(
                    base_url=bridge.url,
                    headers={"Authorization": f"Bearer {DEMO_TOKEN}"},
                    timeout=10,
                ) as api,
            ):
                print(f"photo-bridge import demo: simulator {upstream.url}, bridge {bridge.url}")
                signals = f"{bridge.url}/upstream/demo/signals"
                job_ids = _create_jobs(
                    sim.state.simulator, jobs=jobs, items=items, signals_url=signals
                )
                created = await api.post(
                    "/v1/imports",
                    json={
                        "name": "Spring catalog",
                        "webhook_url": f"{hooks.url}/hook",
                        "events": ["import.*"],
                        "expected_jobs": jobs,
                    },
                    headers={"Idempotency-Key": "demo-import-1"},
                )
                created.raise_for_status()
                import_id = created.json()["import"]["id"]
                added = await api.post(f"/v1/imports/{import_id}/jobs", json={"job_ids": job_ids})
                added.raise_for_status()
                print(f"import {import_id}: {jobs} jobs x {items} images\n")
                final = await _follow(api, import_id, receiver)
                csv = (await api.get(f"/v1/imports/{import_id}/failures?format=csv")).text
    return _summary(receiver, final, csv)


def _summary(receiver: Receiver, final: dict[str, Any], csv: str) -> int:
    events = [e for e in receiver.events if e["type"].startswith("import.")]
    sequences = [e["data"]["sequence"] for e in events]
    in_order = sequences == list(range(1, len(sequences) + 1))
    rows = csv.strip().splitlines()
    print("\nfailures to resubmit (CSV):")
    for row in rows:
        print(f"  {row}")
    summary = {
        "import_status": final["status"],
        "jobs": final["jobs"],
        "images": final["images"],
        "credits_used": final["credits_used"],
        "import_events": [e["type"] for e in events],
        "in_order_without_gaps": in_order,
        "failures_in_csv": max(0, len(rows) - 1),
        "signatures": {"verified": receiver.verified, "rejected": receiver.rejected},
        "seconds": round(time.monotonic() - receiver.started, 1),
    }
    print("\nsummary: " + json.dumps(summary, indent=2))
    ok = (
        in_order
        and receiver.rejected == 0
        and final["status"] in ("completed", "partially_completed", "failed")
        and summary["failures_in_csv"] == final["images"]["failed"]
        and final["images"]["pending"] == 0
    )
    print("demo OK" if ok else "demo FAILED")
    return 0 if ok else 1
