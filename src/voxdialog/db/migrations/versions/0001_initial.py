"""Initial schema: tenants, users, API keys, voice sessions, messages, commands, projects, tasks.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Hand-written to match ``voxdialog.db.models`` exactly; the metadata comparison test fails
when they drift apart.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_ID = 32
_SESSION_ID = 64
_ITEM_ID = 64


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
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("tenant_id", sa.String(_ID), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_users_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_index("ix_users_tenant_id", "users", ["tenant_id"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(_ID), nullable=False),
        *_owner_columns(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("last_used_at", _utc(), nullable=True),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        *_owner_fks("api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_tenant_id_user_id", "api_keys", ["tenant_id", "user_id"])
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])

    op.create_table(
        "voice_sessions",
        sa.Column("id", sa.String(_SESSION_ID), nullable=False),
        *_owner_columns(),
        sa.Column("agent", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("client", sa.String(32), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("ended_at", _utc(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_voice_sessions"),
        *_owner_fks("voice_sessions"),
    )
    op.create_index(
        "ix_voice_sessions_tenant_id_user_id", "voice_sessions", ["tenant_id", "user_id"]
    )
    op.create_index("ix_voice_sessions_user_id", "voice_sessions", ["user_id"])
    op.create_index("ix_voice_sessions_status", "voice_sessions", ["status"])

    op.create_table(
        "messages",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("session_id", sa.String(_SESSION_ID), nullable=False),
        *_owner_columns(),
        sa.Column("item_id", sa.String(_ITEM_ID), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("audio_ms", sa.Float(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["voice_sessions.id"],
            name="fk_messages_session_id_voice_sessions",
            ondelete="CASCADE",
        ),
        *_owner_fks("messages"),
        sa.UniqueConstraint("session_id", "item_id", name="uq_messages_session_id_item_id"),
    )
    op.create_index("ix_messages_session_id_seq", "messages", ["session_id", "seq"])
    op.create_index("ix_messages_tenant_id_user_id", "messages", ["tenant_id", "user_id"])
    op.create_index("ix_messages_user_id", "messages", ["user_id"])

    op.create_table(
        "voice_commands",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("session_id", sa.String(_SESSION_ID), nullable=True),
        *_owner_columns(),
        sa.Column("message_item_id", sa.String(_ITEM_ID), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(64), nullable=False),
        sa.Column("entities", sa.JSON(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("processing_ms", sa.Float(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_voice_commands"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["voice_sessions.id"],
            name="fk_voice_commands_session_id_voice_sessions",
            ondelete="CASCADE",
        ),
        *_owner_fks("voice_commands"),
    )
    op.create_index("ix_voice_commands_session_id", "voice_commands", ["session_id"])
    op.create_index(
        "ix_voice_commands_tenant_id_user_id", "voice_commands", ["tenant_id", "user_id"]
    )
    op.create_index("ix_voice_commands_user_id", "voice_commands", ["user_id"])

    op.create_table(
        "projects",
        sa.Column("id", sa.String(_ID), nullable=False),
        *_owner_columns(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        *_owner_fks("projects"),
        sa.UniqueConstraint(
            "tenant_id", "user_id", "name_key", name="uq_projects_tenant_id_user_id_name_key"
        ),
    )
    op.create_index("ix_projects_user_id", "projects", ["user_id"])

    op.create_table(
        "tasks",
        sa.Column("id", sa.String(_ID), nullable=False),
        *_owner_columns(),
        sa.Column("project_id", sa.String(_ID), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("due_time", sa.Time(), nullable=True),
        sa.Column("priority", sa.String(8), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("completed_at", _utc(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
        *_owner_fks("tasks"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_tasks_project_id_projects",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_tasks_tenant_id_user_id_done", "tasks", ["tenant_id", "user_id", "done"])
    op.create_index("ix_tasks_user_id", "tasks", ["user_id"])
    op.create_index("ix_tasks_project_id", "tasks", ["project_id"])


def downgrade() -> None:
    """Downgrade the schema (drops every table, children first)."""
    for table in (
        "tasks",
        "projects",
        "voice_commands",
        "messages",
        "voice_sessions",
        "api_keys",
        "users",
        "tenants",
    ):
        op.drop_table(table)
