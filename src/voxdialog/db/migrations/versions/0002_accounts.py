"""Accounts: user settings, login sessions with refresh-token families, agents, audit events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Hand-written to match ``voxdialog.db.models``; the metadata comparison test catches drift.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_ID = 32


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _owner_columns() -> list[sa.Column[str]]:
    return [
        sa.Column("tenant_id", sa.String(_ID), nullable=False),
        sa.Column("user_id", sa.String(_ID), nullable=False),
    ]


def _owner_fks(table: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=f"fk_{table}_user_id_users", ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    """Upgrade the schema."""
    # Existing rows get defaults on the way in; the models supply them for new rows.
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("settings", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(
            sa.Column(
                "updated_at", _utc(), nullable=False, server_default=sa.func.current_timestamp()
            )
        )
    with op.batch_alter_table("users") as batch:
        batch.alter_column("settings", server_default=None)
        batch.alter_column("updated_at", server_default=None)

    op.create_table(
        "login_sessions",
        sa.Column("id", sa.String(_ID), nullable=False),
        *_owner_columns(),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.Column("revoked_reason", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_login_sessions"),
        *_owner_fks("login_sessions"),
    )
    op.create_index(
        "ix_login_sessions_tenant_id_user_id", "login_sessions", ["tenant_id", "user_id"]
    )
    op.create_index("ix_login_sessions_user_id", "login_sessions", ["user_id"])

    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("login_session_id", sa.String(_ID), nullable=False),
        sa.Column("issued_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("used_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("jti", name="pk_refresh_tokens"),
        sa.ForeignKeyConstraint(
            ["login_session_id"],
            ["login_sessions.id"],
            name="fk_refresh_tokens_login_session_id_login_sessions",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_refresh_tokens_login_session_id", "refresh_tokens", ["login_session_id"])

    op.create_table(
        "agents",
        sa.Column("id", sa.String(_ID), nullable=False),
        *_owner_columns(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("llm", sa.JSON(), nullable=False),
        sa.Column("stt", sa.JSON(), nullable=False),
        sa.Column("tts", sa.JSON(), nullable=False),
        sa.Column("voice", sa.JSON(), nullable=False),
        sa.Column("greeting", sa.Text(), nullable=True),
        sa.Column("turn_detection", sa.JSON(), nullable=False),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        *_owner_fks("agents"),
        sa.UniqueConstraint("tenant_id", "name_key", name="uq_agents_tenant_id_name_key"),
    )
    op.create_index("ix_agents_user_id", "agents", ["user_id"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("tenant_id", sa.String(_ID), nullable=True),
        sa.Column("user_id", sa.String(_ID), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index(
        "ix_audit_events_tenant_id_created_at", "audit_events", ["tenant_id", "created_at"]
    )
    op.create_index("ix_audit_events_created_at", "audit_events", ["created_at"])


def downgrade() -> None:
    """Downgrade the schema."""
    for table in ("audit_events", "agents", "refresh_tokens", "login_sessions"):
        op.drop_table(table)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("settings")
