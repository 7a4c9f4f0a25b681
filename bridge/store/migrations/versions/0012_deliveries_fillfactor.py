"""On PostgreSQL, the outbox's pages keep half their room for the row's next versions.

A delivery is updated twice after it is queued: leased, then recorded. The lease touches no indexed
column, so PostgreSQL can write it as a heap-only tuple (HOT: no new entry in any of the table's
eight indexes), but only when the row's page has room for the new version; at the default
fillfactor (100) a freshly filled page has none, and every lease wrote eight index entries. At 50,
leases are HOT and the database's CPU per delivery fell by a fifth (0.100 → 0.080 ms; drains
+6-8% in interleaved runs). The setting applies to pages filled from now on; SQLite has no such
setting.

Revision ID: 0012_deliveries_fillfactor
Revises: 0011_snapshot_last
"""

from alembic import op

revision = "0012_deliveries_fillfactor"
down_revision = "0011_snapshot_last"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
