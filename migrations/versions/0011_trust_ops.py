"""Schema changes of issue 19b (nothing dropped, operations): status-event battery reports, the
device a dead letter names and its replay outcome, dead-letter / quarantine quota overflow
counts, the frame-counter duplicate index on network-server time, the installation's identity
and gateway client-id leases.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    # ChirpStack event/status reports (docs/storage.md#battery-reports)
    op.create_table(
        "battery_reports",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("time", TZ, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("level_pct", sa.Float(), nullable=True),
        sa.Column("external_power", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("margin_db", sa.SmallInteger(), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "time"),
    )
    # the device a dead letter names (topic or token), for quotas, replay and erasure
    op.add_column("dead_letters", sa.Column("ref_scheme", sa.Text(), nullable=True))
    op.add_column("dead_letters", sa.Column("ref_value", sa.Text(), nullable=True))
    op.add_column("dead_letters", sa.Column("replay_error", sa.Text(), nullable=True))
    op.create_index("dead_letters_ref", "dead_letters", ["ref_scheme", "ref_value"])
    op.create_index("dead_letters_received_at", "dead_letters", ["received_at"])
    op.create_index("quarantine_ref", "quarantine", ["ref_scheme", "ref_value"])
    op.create_index("quarantine_received_at", "quarantine", ["received_at"])
    # messages refused because their device's dead-letter or quarantine quota was full
    op.create_table(
        "kept_overflow",
        sa.Column("kind", sa.Text(), nullable=False),  # dead_letters | quarantine
        sa.Column("ref_scheme", sa.Text(), nullable=False),  # '' when the message names no device
        sa.Column("ref_value", sa.Text(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("refused_bytes", sa.BigInteger(), nullable=False),
        sa.Column("first_at", TZ, nullable=False),
        sa.Column("last_at", TZ, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("kind", "ref_scheme", "ref_value"),
    )
    # frame-counter duplicates are judged on network-server time, not arrival time
    op.drop_index("uplinks_fcnt", table_name="uplinks")
    op.execute("create index uplinks_fcnt_ns on uplinks (device_id, f_cnt, (coalesce(ns_time, time)))")
    # the installation's identity (default MQTT client ids) and the leases of gateway client ids
    op.create_table(
        "installation",
        sa.Column("id", postgresql.UUID(as_uuid=False), server_default=sa.text("gen_random_uuid()"),
                  nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("insert into installation default values")
    op.create_table(
        "gateway_leases",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),  # random per gateway run
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("heartbeat_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )


def downgrade() -> None:
    op.drop_table("gateway_leases")
    op.drop_table("installation")
    op.execute("drop index if exists uplinks_fcnt_ns")
    op.create_index("uplinks_fcnt", "uplinks", ["device_id", "f_cnt", "received_at"])
    op.drop_table("kept_overflow")
    op.drop_index("quarantine_received_at", table_name="quarantine")
    op.drop_index("quarantine_ref", table_name="quarantine")
    op.drop_index("dead_letters_received_at", table_name="dead_letters")
    op.drop_index("dead_letters_ref", table_name="dead_letters")
    op.drop_column("dead_letters", "replay_error")
    op.drop_column("dead_letters", "ref_value")
    op.drop_column("dead_letters", "ref_scheme")
    op.drop_table("battery_reports")
