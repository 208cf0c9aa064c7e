"""Schema changes of the api package: `device_zones`, which administrative zone each fixed
device lies in (computed from its exact position, which never leaves the database).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_zones",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "zone_id"),
    )
    op.create_index("device_zones_zone", "device_zones", ["zone_id"])


def downgrade() -> None:
    op.drop_table("device_zones")
