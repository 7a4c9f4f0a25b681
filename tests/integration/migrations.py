"""Test helper: run one Alembic command (upgrade, downgrade) on a connection, as `run_sync` takes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig

from bridge.store.engine import _MIGRATIONS


def migrate(step: str, revision: str) -> Callable[[Any], None]:
    def run(connection: Any) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["connection"] = connection
        getattr(command, step)(cfg, revision)

    return run
