"""Stored zone rows compressed by civicair (LZ4 block, `raw_size` = the JSON's length) instead of
by PostgreSQL: a year page then moves ~90 KB from the database instead of ~0.5 MB, and
PostgreSQL neither decompresses nor re-compresses it (storage MAIN: kept inline, not
compressed again). Rows written before (no `raw_size`) are rebuilt by the next refresh (the
renderer version changed with this migration).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("zone_series", sa.Column("raw_size", sa.Integer(), nullable=True))
    op.execute("alter table zone_series alter column docs set storage main")


def downgrade() -> None:
    op.execute("alter table zone_series alter column docs set storage extended")
    op.drop_column("zone_series", "raw_size")
