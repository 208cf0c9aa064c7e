"""Schema changes of issue 18 (SensorThings API); empty until that work lands (a fixed slot in
the chain, so work on several issues can add migrations side by side).

Revision ID: 0016
Revises: 0015
"""

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
