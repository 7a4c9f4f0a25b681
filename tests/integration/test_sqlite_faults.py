"""A SQLite file or folder made read-only, or its disk full: /readyz says so, an error log line names
the path, the API answers 503 instead of 500, and nothing stored is lost once the fault is gone.

The tests run as root, whom file modes do not stop, so read-only is made with `chattr +i` (the
kernel refuses writes to an immutable file even to root), and a full disk is a small tmpfs filled
to the last byte. Each skips, saying why, where the machine cannot do that.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.store import open_store
from tests.integration.api_support import Api, running_api
from tests.integration.test_cli import run_cli

STORE_LOG = "bridge.store.database"


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make `path` unwritable for this process: immutable for root, mode 0555 for anyone else."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not possible here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of the test's own, so it can be filled without filling the machine."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path) -> Path:
    """Write a file until the disk has no byte left; delete it to end the fault."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    out.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


async def _stored(url: str) -> set[str]:
    """The ids of every watch in the database, read by a fresh store as after a restart."""
    store = await open_store(url)
    try:
        page, _ = await store.watches.page(client="shop", status=None, limit=100, cursor=None)
    finally:
        await store.close()
    return {watch.id for watch in page}


async def _made(api: Api, count: int) -> list[str]:
    made = [await api.create() for _ in range(count)]
    assert [r.status_code for r in made] == [201] * count
    return [r.json()["watch"]["id"] for r in made]


def _storage(response: httpx.Response) -> str:
    return str(response.json()["checks"]["storage"])


def _logged(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == STORE_LOG and r.getMessage() == message]


async def test_sqlite_disk_full_is_reported_and_loses_nothing(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = small_disk / "bridge.db"
    url = f"sqlite:///{db}"
    async with running_api(url) as api:
        before = await _made(api, 3)
        assert _storage(await api.http.get("/readyz")) == "ok"
        with caplog.at_level(logging.INFO, logger=STORE_LOG):
            filler = _fill(small_disk)
            full = await api.http.get("/readyz")
            refused = await api.create()
            filler.unlink()
            back = await api.http.get("/readyz")
        after = await _made(api, 1)
    assert full.status_code == 503 and _storage(full) == "disk full"
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "storage_unavailable"
    assert refused.headers["Retry-After"] == "5"
    [error] = _logged(caplog, "storage cannot be written")
    assert error.levelno == logging.ERROR and error.storage == str(db)  # type: ignore[attr-defined]
    assert error.fault == "disk full"  # type: ignore[attr-defined]
    assert _logged(caplog, "storage takes writes again")
    assert back.status_code == 503 and _storage(back) == "ok"  # 503: no scheduler in this test
    assert await _stored(url) == {*before, *after}


@pytest.mark.parametrize("what", ["file", "folder"])
async def test_sqlite_read_only_is_reported_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, what: str
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "bridge.db"
    url = f"sqlite:///{db}"
    async with running_api(url) as api:
        before = await _made(api, 3)
        with caplog.at_level(logging.INFO, logger=STORE_LOG):
            with read_only(db if what == "file" else folder):
                refused = await api.http.get("/readyz")
                during = await api.create()  # SQLite may still append to its open WAL file
            back = await api.http.get("/readyz")
        after = await _made(api, 1)
    assert refused.status_code == 503 and _storage(refused) == "read-only"
    assert during.status_code in (201, 503), during.text
    [error] = _logged(caplog, "storage cannot be written")
    assert error.levelno == logging.ERROR and error.storage == str(db)  # type: ignore[attr-defined]
    assert str(db if what == "file" else folder) in error.error  # type: ignore[attr-defined]
    assert _storage(back) == "ok"
    kept = {*before, *after}
    if during.status_code == 201:
        kept.add(during.json()["watch"]["id"])
    assert await _stored(url) == kept


def _serve_config(folder: Path, db: Path) -> Path:
    config = folder.parent / "config.yaml"
    config.write_text(
        f"""
storage: {{url: "sqlite:///{db}"}}
server: {{host: 127.0.0.1, port: 0}}
upstream: {{base_url: "http://127.0.0.1:9", accounts: {{main: {{api_key: aigen_test_key}}}}}}
clients: {{shop: {{token: shop-token-0001, accounts: [main]}}}}
"""
    )
    return config


@pytest.mark.parametrize("what", ["file", "folder", "missing folder"])
def test_serve_on_an_unwritable_sqlite_path_exits_naming_it(tmp_path: Path, what: str) -> None:
    folder = tmp_path / "data"
    db = folder / "bridge.db"
    config = _serve_config(folder, db)
    if what != "missing folder":
        folder.mkdir()
        db.write_bytes(b"")  # an empty file is a valid, empty SQLite database
    target = {"file": db, "folder": folder}.get(what)
    with read_only(target) if target else contextlib.nullcontext():
        ran = run_cli("serve", "--config", str(config), cwd=tmp_path)
    assert ran.code == 1, ran.both
    named = db if what == "file" else folder
    assert ran.err.startswith("storage.url: ") and str(named) in ran.err, ran.err
    assert "Traceback" not in ran.both
