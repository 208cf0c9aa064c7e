"""Calibration that holds on real campaigns (issue 14): a device with nothing published keeps a
model row without coefficients (its evidence and reasons); each model row carries its status,
stars and reasons; κ of the Köhler model; flags know their scope ("hours": a run of hours,
"window": a verdict on the whole window, replaced on every run); one active model per device and
quantity.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("calibrations", "a", nullable=True)
    op.alter_column("calibrations", "b", nullable=True)
    op.add_column("calibrations", sa.Column("kappa", sa.Float(), nullable=True))
    op.add_column("calibrations", sa.Column("status", sa.Text(), nullable=True))
    op.add_column("calibrations", sa.Column("stars", sa.SmallInteger(), nullable=True))
    op.add_column("calibrations", sa.Column("reasons", JSONB(), nullable=False, server_default="[]"))
    # older runs could leave several active rows; keep the newest
    op.execute("update calibrations c set active = false where active and exists (select 1 from calibrations n "
               "where n.device_id = c.device_id and n.quantity = c.quantity and n.active and n.id > c.id)")
    op.create_index("calibrations_one_active", "calibrations", ["device_id", "quantity"], unique=True,
                    postgresql_where=sa.text("active"))
    op.add_column("device_flags", sa.Column("scope", sa.Text(), nullable=False, server_default="hours"))
    op.execute("update device_flags set scope = 'window' where flag = 'drift' or (flag = 'clock' and evidence ? 'lag_hours')")
    op.create_index("device_flags_device_quantity_end", "device_flags", ["device_id", "quantity", "period_end"])


def downgrade() -> None:
    op.drop_index("device_flags_device_quantity_end", table_name="device_flags")
    op.drop_column("device_flags", "scope")
    op.drop_index("calibrations_one_active", table_name="calibrations")
    op.drop_column("calibrations", "reasons")
    op.drop_column("calibrations", "stars")
    op.drop_column("calibrations", "status")
    op.drop_column("calibrations", "kappa")
    op.execute("delete from calibrations where a is null or b is null")
    op.alter_column("calibrations", "b", nullable=False)
    op.alter_column("calibrations", "a", nullable=False)
