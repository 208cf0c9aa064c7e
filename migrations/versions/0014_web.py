"""Schema changes of issue 16 (the public web); empty until that work lands (a fixed slot in
the chain, so work on several issues can add migrations side by side).

Revision ID: 0014
Revises: 0013
"""

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
