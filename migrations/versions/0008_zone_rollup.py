"""Materialised zone series (like a TimescaleDB continuous aggregate with real-time data, on
plain PostgreSQL): `zone_series` holds each zone's published hourly and daily rows up to a
watermark, already rendered (JSON bytes), a day of hours or a week of days per row; `zone_rollup` the state each zone was built from (its devices, k,
renderer version, watermark); `zone_invalidations` the (quantity, hour) pairs of `hourly` written
since, logged by statement triggers so no write path can forget them.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

LOG_FUNCTION = """
create or replace function civicair_log_hourly_{event}() returns trigger language plpgsql as $$
begin
    insert into zone_invalidations (quantity, hour) {rows};
    return null;
end $$
"""

# event → (transition tables, the rows whose (quantity, hour) are logged)
TRIGGERS = {
    "insert": ("new table as new_rows", "select distinct quantity, hour from new_rows"),
    "update": ("old table as old_rows new table as new_rows",
               "select quantity, hour from new_rows union select quantity, hour from old_rows"),
    "delete": ("old table as old_rows", "select distinct quantity, hour from old_rows"),
}


def upgrade() -> None:
    op.create_table(
        "zone_rollup",
        sa.Column("zone_id", sa.Text(), primary_key=True),
        sa.Column("device_ids", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("watermark", TZ, nullable=False),
        sa.Column("refreshed_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "zone_series",
        sa.Column("zone_id", sa.Text(), nullable=False),
        sa.Column("quantity", sa.SmallInteger(), nullable=False),
        sa.Column("interval", sa.Text(), nullable=False),
        sa.Column("chunk", TZ, nullable=False),
        sa.Column("n", sa.SmallInteger(), nullable=False),
        sa.Column("n_suppressed", sa.Integer(), nullable=False),
        sa.Column("idx", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("ends", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("suppressed", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("docs", postgresql.BYTEA(), nullable=False),
        sa.PrimaryKeyConstraint("zone_id", "quantity", "interval", "chunk"),
    )
    op.create_table(
        "zone_invalidations",
        sa.Column("quantity", sa.SmallInteger(), nullable=False),
        sa.Column("hour", TZ, nullable=False),
    )
    op.create_index("zone_invalidations_hour", "zone_invalidations", ["quantity", "hour"])
    for event, (tables, rows) in TRIGGERS.items():
        op.execute(LOG_FUNCTION.format(event=event, rows=rows))
        op.execute(f"create trigger hourly_log_{event} after {event} on hourly referencing {tables} "
                   f"for each statement execute function civicair_log_hourly_{event}()")


def downgrade() -> None:
    for event in TRIGGERS:
        op.execute(f"drop trigger if exists hourly_log_{event} on hourly")
        op.execute(f"drop function if exists civicair_log_hourly_{event}()")
    op.drop_table("zone_invalidations")
    op.drop_table("zone_series")
    op.drop_table("zone_rollup")
