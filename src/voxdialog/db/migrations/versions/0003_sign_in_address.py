"""Users remember the address they last signed in from (the login throttle trusts it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_sign_in_ip", sa.String(64), nullable=True))


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_sign_in_ip")
