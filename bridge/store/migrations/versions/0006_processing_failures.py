"""Count polls in a row whose processing raised, so a job the bridge cannot handle stops being polled.

Revision ID: 0006_processing_failures
Revises: 0005_retention
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_processing_failures"
down_revision = "0005_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upstream_jobs") as batch:
        batch.add_column(sa.Column("failure_count", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("upstream_jobs") as batch:
        batch.drop_column("failure_count")
