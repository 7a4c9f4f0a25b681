"""Imports: a catalog of jobs told as one story, rolled up by the polls that watch its jobs.

Revision ID: 0007_imports
Revises: 0006_processing_failures
"""

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0007_imports"
down_revision = "0006_processing_failures"
branch_labels = None
depends_on = None


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, nullable=False, server_default="0")


def upgrade() -> None:
    with op.batch_alter_table("watches") as batch:
        batch.add_column(sa.Column("import_id", sa.String(40)))
        batch.add_column(sa.Column("counted", sa.JSON))
        batch.create_index("ix_watches_import", ["import_id", "job_id"], unique=True)
    op.create_table(
        "imports",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("client", sa.String(200), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("expected_jobs", sa.Integer),
        sa.Column("webhook_url", sa.Text),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        _count("last_sequence"),
        _count("jobs_total"),
        _count("jobs_active"),
        _count("jobs_completed"),
        _count("jobs_partially_completed"),
        _count("jobs_failed"),
        _count("jobs_cancelled"),
        _count("jobs_seen"),
        _count("images_total"),
        _count("images_completed"),
        _count("images_failed"),
        sa.Column("credits_used", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("started", sa.Boolean, nullable=False, server_default=sa.false()),
        _count("progress_tenths"),
        sa.Column("stalled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("started_at", UTCDateTime),
        sa.Column("last_finished_at", UTCDateTime),
        sa.Column("finished_by_minute", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime),
        sa.UniqueConstraint("client", "idempotency_key", name="uq_imports_client_idempotency_key"),
    )
    op.create_index("ix_imports_client", "imports", ["client", "id"])
    op.create_index("ix_imports_status", "imports", ["status", "last_finished_at"])
    op.create_index("ix_imports_ended", "imports", ["ended_at"])
    op.create_table(
        "import_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("import_id", sa.String(40), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("external_id", sa.Text),
        sa.Column("error_code", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("import_id", "job_id", "item_id", name="uq_import_failures_item"),
    )
    op.create_index("ix_import_failures_import", "import_failures", ["import_id", "id"])


def downgrade() -> None:
    op.drop_table("import_failures")
    op.drop_table("imports")
    with op.batch_alter_table("watches") as batch:
        batch.drop_index("ix_watches_import")
        batch.drop_column("counted")
        batch.drop_column("import_id")
