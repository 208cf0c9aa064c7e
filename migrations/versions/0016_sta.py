"""SensorThings API (issue 18): `sta_ids`, the registry of the integer `@iot.id`s of the public
things (fixed devices by pseudonym, zones, reference stations) and of the sensor models. Filled
by the `readmodel.sta_ids` job (readmodel/registry.py); an id is never reused: rows are never
deleted and the identity column never goes back (docs/sensorthings.md#identifiers).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sta_ids",
        sa.Column("id", sa.Integer, sa.Identity(always=True), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("kind", "key", name="sta_ids_kind_key"),
        sa.CheckConstraint("kind in ('device','zone','station','sensor')", name="sta_ids_kind"),
    )


def downgrade() -> None:
    op.drop_table("sta_ids")
