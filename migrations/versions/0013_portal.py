"""Export freshness (issue 15): `export_invalidations` logs the past UTC days whose published data
changed after they finished — hourly rows rewritten by a calibration refit or late readings, and
reference measurements imported late — so the export job rewrites those days' files and their
month files. Logged by statement triggers (like `zone_invalidations`, which the zone rollup
consumes: this log is the export's own). The partial current day is not logged: the job rewrites
today's files on every run anyway. docs/open-data.md#freshness

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

LOG_FUNCTION = """
create or replace function civicair_log_export_{table}_{event}() returns trigger language plpgsql as $$
begin
    insert into export_invalidations (day)
    select distinct (t at time zone 'UTC')::date from ({rows}) changed(t)
    where t < date_trunc('day', now() at time zone 'UTC') at time zone 'UTC';
    return null;
end $$
"""

# table → its time column; event → (transition tables, the changed rows' times)
TABLES = {"hourly": "hour", "reference_readings": "time"}
EVENTS = {
    "insert": ("new table as new_rows", "select {col} from new_rows"),
    "update": ("old table as old_rows new table as new_rows",
               "select {col} from new_rows union select {col} from old_rows"),
    "delete": ("old table as old_rows", "select {col} from old_rows"),
}


def upgrade() -> None:
    op.create_table(
        "export_invalidations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    for table, col in TABLES.items():
        for event, (transitions, rows) in EVENTS.items():
            op.execute(LOG_FUNCTION.format(table=table, event=event, rows=rows.format(col=col)))
            op.execute(f"create trigger {table}_export_log_{event} after {event} on {table} "
                       f"referencing {transitions} for each statement "
                       f"execute function civicair_log_export_{table}_{event}()")


def downgrade() -> None:
    for table in TABLES:
        for event in EVENTS:
            op.execute(f"drop trigger if exists {table}_export_log_{event} on {table}")
            op.execute(f"drop function if exists civicair_log_export_{table}_{event}()")
    op.drop_table("export_invalidations")
