"""Volunteer sign-up by e-mail (issue 17v): `signups`, the registrations waiting for their
confirmation link (docs/onboarding.md#sign-up-by-e-mail).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "signups",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("email_key", sa.Text, nullable=False),
        sa.Column("request", JSONB),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("confirmed_at", TZ),
        sa.Column("device_uid", sa.Text),
        sa.Column("shown_at", TZ),
    )
    op.create_index("signups_email", "signups", ["email_key", "created_at"])


def downgrade() -> None:
    op.drop_table("signups")
