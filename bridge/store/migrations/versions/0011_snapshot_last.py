"""On SQLite, a job's snapshot moves to the end of its row.

A snapshot is a few KiB, so SQLite keeps most of it on overflow pages, and every column stored after
it was read by walking that chain: the claim's due-jobs query, which reads every due job's schedule,
spent most of its time there (60 ms for 10,000 due jobs, 43 ms with the snapshot last). PostgreSQL
keeps large values apart from the row already, so its table is left as it is.

Revision ID: 0011_snapshot_last
Revises: 0010_discovery
"""

from alembic import op

revision = "0011_snapshot_last"
down_revision = "0010_discovery"
branch_labels = None
depends_on = None

COLUMNS = (  # every column but the snapshot, in the order 0010 left them
    "account",
    "job_id",
    "status",
    "final",
    "next_poll_at",
    "interval_s",
    "priority",
    "last_polled_at",
    "last_changed_at",
    "not_found_count",
    "first_not_found_at",
    "error_count",
    "lease_owner",
    "lease_expires_at",
    "created_at",
    "updated_at",
    "failure_count",  # added by 0006, so last until now
)


def _reorder(order: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("upstream_jobs", recreate="always", partial_reordering=[order]):
        pass


def upgrade() -> None:
    _reorder((*COLUMNS, "snapshot"))


def downgrade() -> None:
    _reorder(("account", "job_id", "snapshot", *COLUMNS[2:]))
