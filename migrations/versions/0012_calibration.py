"""Schema changes of issue 14 (calibration that holds on real campaigns); empty until that work lands (a fixed slot in
the chain, so work on several issues can add migrations side by side).

Revision ID: 0012
Revises: 0011
"""

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
