"""Storage faults: a row the readiness probe writes, and when an account's key was first refused.

Revision ID: 0004_faults
Revises: 0003_ops_indexes
"""

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0004_faults"
down_revision = "0003_ops_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    probe = op.create_table(
        "storage_probe",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("writes", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(probe, [{"id": 1, "writes": 0}])
    op.add_column("account_budgets", sa.Column("unauthorized_since", UTCDateTime))


def downgrade() -> None:
    op.drop_column("account_budgets", "unauthorized_since")
    op.drop_table("storage_probe")
