"""Schema changes of issue 15 (portal harvesting, fresh files); empty until that work lands (a fixed slot in
the chain, so work on several issues can add migrations side by side).

Revision ID: 0013
Revises: 0012
"""

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
