"""A throwaway PostgreSQL cluster in a temporary folder, for tests and benchmarks.

It listens on 127.0.0.1 at a free port with trust auth and is tuned for speed over durability.
As root, initdb and pg_ctl run as Debian's `postgres` user (initdb refuses to run as root).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.ports import free_port

PREFERRED_MAJOR = "15"
SKIP_REASON = (
    "PostgreSQL binaries not found in /usr/lib/postgresql/*/bin;"
    " install postgresql to run these tests"
)
_COMMAND_TIMEOUT_S = 60
_START_ATTEMPTS = 3
_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    " -c full_page_writes=off -c max_connections=200"
)
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def find_bin_dir() -> Path | None:
    """Return the folder holding initdb/pg_ctl: $PG_BIN, else version 15, else the newest."""
    explicit = os.environ.get("PG_BIN")
    if explicit:
        return Path(explicit) if (Path(explicit) / "initdb").is_file() else None
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.is_file()]
    if not found:
        return None

    def rank(bin_dir: Path) -> tuple[bool, int]:
        major = bin_dir.parent.name
        return (major == PREFERRED_MAJOR, int(major) if major.isdigit() else -1)

    return max(found, key=rank)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


@dataclasses.dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster reachable over TCP as the `postgres` superuser."""

    host: str
    port: int
    bin_dir: Path
    version_num: int = 0

    @property
    def admin_url(self) -> str:
        """URL of the maintenance database, for creating and dropping databases."""
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        """URL of `dbname` in the form `storage.url` accepts."""
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, *, dbname: str = "postgres", check: bool = True) -> str:
        """Run one SQL command with psql over TCP and return its unaligned output."""
        psql = self.bin_dir / "psql"
        exe = str(psql) if psql.is_file() else (shutil.which("psql") or "psql")
        argv = [exe, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", dbname, "-c", sql]
        # A developer's PGSSLMODE, PGOPTIONS, ... must not leak into the throwaway cluster.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = "10"
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=_COMMAND_TIMEOUT_S, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"psql failed ({done.returncode}) for {sql!r}: {done.stderr.strip()}"
            )
        return done.stdout

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a unique name unless given) and return its URL."""
        name = name or f"pb_{uuid.uuid4().hex}"
        if not _SAFE_NAME.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        # FILE_COPY (PostgreSQL 15+) copies the tiny template ~3x faster than the WAL_LOG default.
        strategy = " STRATEGY FILE_COPY" if self.version_num >= 150000 else ""
        self.psql(f'CREATE DATABASE "{name}"{strategy}')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, even with connections still open; errors are ignored."""
        if not _SAFE_NAME.match(name):
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)


class ClusterUnavailable(Exception):
    """PostgreSQL cannot be started on this machine (the reason says why)."""


class Cluster:
    """Owns the temporary folder and the server process; runs tools as `postgres` under root."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.run_as: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise ClusterUnavailable(
                    "running as root and there is no 'postgres' user to run initdb as"
                ) from None
            self.run_as = ["runuser", "-u", "postgres", "--"]
        # Under /tmp, not pytest's 0700 basetemp, so the postgres user can reach it.
        self.root = Path(tempfile.mkdtemp(prefix="photo-bridge-pg-", dir="/tmp"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "postgres.log"
        self.sockets.mkdir(mode=0o755)
        self.log.touch()
        if owner is not None:
            for path in (self.root, self.sockets, self.log):
                os.chown(path, owner.pw_uid, owner.pw_gid)

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [*self.run_as, str(self.bin_dir / tool), *args]
        return subprocess.run(
            argv,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S + 30,
            check=False,
        )

    def init(self) -> None:
        args = ["-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        # --locale=C: a host without generated locales must not make initdb fail.
        done = self._run("initdb", *args, "--locale=C", "--no-sync")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def start(self, port: int | None = None) -> int:
        """Start on `port` (a restart), else on a free port, retrying when another process grabs
        the port first."""
        failure = ""
        for _ in range(1 if port else _START_ATTEMPTS):
            chosen = port or free_port()
            options = f"-p {chosen} -k {self.sockets} {_SERVER_OPTIONS}"
            args = ["-D", str(self.data), "-l", str(self.log), "-w", "-t", str(_COMMAND_TIMEOUT_S)]
            done = self._run("pg_ctl", *args, "-o", options, "start")
            if done.returncode == 0:
                return chosen
            failure = f"{done.stdout}{done.stderr}\n--- log tail ---\n{_tail(self.log)}"
            self.stop()
            if "could not bind" not in failure and "already in use" not in failure:
                break
        raise RuntimeError(f"pg_ctl start failed:\n{failure}")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server, at once by default (a crash: with this cluster's settings the last
        commits may be lost) or "fast" (clean, as a restart by an operator); fall back to SIGQUIT
        (immediate shutdown) if pg_ctl fails."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            done = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
            if done.returncode == 0:
                return
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGQUIT)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def controlled_cluster() -> Iterator[tuple[PostgresServer, Cluster]]:
    """A cluster for the block, and its control to stop and start it again on the same port
    (raises ClusterUnavailable without binaries)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise ClusterUnavailable(SKIP_REASON)
    cluster = Cluster(bin_dir)
    try:
        cluster.init()
        port = cluster.start()
        server = PostgresServer(host="127.0.0.1", port=port, bin_dir=bin_dir)
        version_num = int(server.psql("SHOW server_version_num").strip())
        yield dataclasses.replace(server, version_num=version_num), cluster
    finally:
        cluster.stop()
        cluster.remove()


@contextlib.contextmanager
def running_cluster() -> Iterator[PostgresServer]:
    """Start a cluster for the duration of the block (raises ClusterUnavailable without binaries)."""
    with controlled_cluster() as (server, _):
        yield server
