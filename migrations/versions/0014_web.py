"""Issue 16, the public web: `map_snapshots`, the map's latest values rendered once per
(quantity, index scale) by the readmodel.map job (readmodel/map.py), gzip-compressed, so the map
endpoint answers with one row read (docs/open-data.md#the-map-endpoint).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "map_snapshots",
        sa.Column("quantity", sa.SmallInteger(), primary_key=True),
        sa.Column("scale", sa.Text(), primary_key=True),
        sa.Column("hour_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        sa.Column("raw_size", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
    )
    # already gzip-compressed: PostgreSQL should not try again
    op.execute("alter table map_snapshots alter column body set storage external")


def downgrade() -> None:
    op.drop_table("map_snapshots")
