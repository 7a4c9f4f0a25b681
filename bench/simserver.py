"""A simulator process for benchmarks: N keys, one never-ending job each, no limits.

python bench/simserver.py N OUT.json [SECONDS_PER_ITEM [JOBS_PER_KEY]]   # writes {"url", "keys", "jobs"}

With SECONDS_PER_ITEM the jobs move (an image finishes every so many seconds), so polls find changes;
with JOBS_PER_KEY, N jobs share N / JOBS_PER_KEY keys (job i is on key i // JOBS_PER_KEY).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def wait_ready(out: Path, proc: subprocess.Popen[bytes], *, within_s: float = 120) -> str:
    """Wait until the server wrote OUT.json; returns its URL."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("simulator process exited")
        if out.exists() and out.stat().st_size:
            return str(json.loads(out.read_text())["url"])
        time.sleep(0.05)
    raise TimeoutError("simulator did not start")


def main() -> None:
    import uvicorn

    from bridge.devtools.simulator import KeyLimits, SimulatorSettings, create_simulator

    count, out = int(sys.argv[1]), Path(sys.argv[2])
    per_item = float(sys.argv[3]) if len(sys.argv) > 3 else 10**6
    per_key = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    keys = [f"aigen_test_bench{i:05d}" for i in range(-(-count // per_key))]
    settings = SimulatorSettings(
        keys={k: KeyLimits(polls_per_hour=10**9, max_active_jobs=10**6) for k in keys},
        seconds_per_item=per_item,
        queue_delay_s=0.0,
        failure_rate=0.1,
        enforce_limits=False,
    )
    app = create_simulator(settings)
    sim = app.state.simulator
    jobs = [sim.create_job(keys[i // per_key], total_items=20) for i in range(count)]
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="error", access_log=False)
    server = uvicorn.Server(config)

    async def serve() -> None:
        import asyncio

        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        out.write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "keys": keys, "jobs": jobs}))
        await task

    import asyncio

    asyncio.run(serve())


if __name__ == "__main__":
    main()
