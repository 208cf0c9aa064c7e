"""Schema changes of issue 19 (trust under attack: publication workflow, erasure, quotas); empty until that work lands (a fixed slot in
the chain, so work on several issues can add migrations side by side).

Revision ID: 0010
Revises: 0009
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
