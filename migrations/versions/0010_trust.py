"""Trust under attack (issue 19, privacy and integrity): the publication workflow, the blocked
hardware identifiers of erased devices, the registration log behind its rate limit, dead letters
tied to the device that pushed them, and the mobile rollup (per-device, per-trip cell-hours and
the log of the mobile hours written since it last ran).

- `devices.publication`: `pending` (public once past the QA window and not unreliable),
  `approved` (public now, by an operator), `withheld` (never public); `first_received_at`: the
  server time of the first stored reading, the start of the QA window (docs/privacy.md#publication).
  Existing devices keep their history: `first_received_at` starts as `first_seen`.
- `mobile_invalidations` is filled by statement triggers on `hourly` (as `zone_invalidations`
  is), so no write path can forget that a mobile device's hours changed.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

LOG_FUNCTION = """
create or replace function civicair_log_mobile_{event}() returns trigger language plpgsql as $$
begin
    insert into mobile_invalidations (device_id, hour)
    select n.device_id, n.hour from (select distinct device_id, hour from new_rows) n
    where exists (select 1 from devices d where d.id = n.device_id and d.kind = 'mobile');
    return null;
end $$
"""
# distinct first, then the devices: +2.3 ms on a 2,000-row upsert of `hourly` (a join first: +3.5 ms)
TRIGGERS = {"insert": "new table as new_rows", "update": "old table as old_rows new table as new_rows"}


def upgrade() -> None:
    op.add_column("devices", sa.Column("publication", sa.Text(), nullable=False, server_default="pending"))
    op.add_column("devices", sa.Column("publication_changed_at", TZ))
    op.add_column("devices", sa.Column("publication_note", sa.Text()))
    op.add_column("devices", sa.Column("publication_by", sa.Text()))
    op.add_column("devices", sa.Column("first_received_at", TZ))
    op.create_check_constraint("devices_publication", "devices",
                               "publication in ('pending','approved','withheld')")
    op.execute("update devices set first_received_at = first_seen where first_seen is not null")

    op.add_column("dead_letters", sa.Column("device_id", sa.Integer()))
    op.create_index("dead_letters_device", "dead_letters", ["device_id"],
                    postgresql_where=sa.text("device_id is not null"))

    op.create_table(
        "blocked_refs",
        sa.Column("ref_hash", sa.Text(), primary_key=True),  # HMAC of (scheme, value), never the value
        sa.Column("scheme", sa.Text(), nullable=False),
        sa.Column("blocked_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_message_at", TZ),
    )
    op.create_table(
        "registrations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("client_key", sa.Text(), nullable=False),  # HMAC of the client's network
    )
    op.create_index("registrations_client", "registrations", ["client_key", "at"])

    op.create_table(
        "mobile_cell_hours",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("trip_start", TZ, nullable=False),
        sa.Column("quantity", sa.SmallInteger(), nullable=False),
        sa.Column("hour", TZ, nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),  # H3 index as a signed 64-bit integer
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "trip_start", "quantity", "hour", "cell"),
    )
    op.create_index("mobile_cell_hours_public", "mobile_cell_hours", ["quantity", "hour", "cell", "device_id"],
                    postgresql_include=["n", "sum", "min", "max"])
    op.create_table(
        "mobile_invalidations",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("hour", TZ, nullable=False),
    )
    op.create_table(
        "mobile_rollup",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        sa.Column("params", postgresql.JSONB(), nullable=False),
        sa.Column("refreshed_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    for event, transition in TRIGGERS.items():
        op.execute(LOG_FUNCTION.format(event=event))
        op.execute(f"create trigger hourly_mobile_{event} after {event} on hourly referencing {transition} "
                   f"for each statement execute function civicair_log_mobile_{event}()")
    # every mobile hour already stored: the first refresh builds the rollup from them
    op.execute("insert into mobile_invalidations (device_id, hour) select distinct h.device_id, h.hour "
               "from hourly h join devices d on d.id = h.device_id and d.kind = 'mobile'")


def downgrade() -> None:
    for event in TRIGGERS:
        op.execute(f"drop trigger if exists hourly_mobile_{event} on hourly")
        op.execute(f"drop function if exists civicair_log_mobile_{event}()")
    for table in ("mobile_rollup", "mobile_invalidations", "mobile_cell_hours", "registrations", "blocked_refs"):
        op.drop_table(table)
    op.drop_index("dead_letters_device", table_name="dead_letters")
    op.drop_column("dead_letters", "device_id")
    op.drop_constraint("devices_publication", "devices")
    for column in ("first_received_at", "publication_by", "publication_note", "publication_changed_at",
                   "publication"):
        op.drop_column("devices", column)
