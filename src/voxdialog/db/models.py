"""The database tables (SQLAlchemy 2 declarative), portable between SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so the hand-written migration can name them too and a later
# migration can drop them by name on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 32
SESSION_ID_LENGTH = 64  # Realtime session ids ("sess_...") are chosen by the protocol layer.
ITEM_ID_LENGTH = 64
NAME_LENGTH = 200


def new_id() -> str:
    """A fresh row id: a uuid4 as 32 hex characters."""
    return uuid.uuid4().hex


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """``DateTime(timezone=True)`` that always stores UTC and always returns aware UTC values.

    SQLite has no timestamp type and drops the offset, so values are normalised to UTC before
    they are written and the UTC zone is put back when they are read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Convert to UTC; naive values are refused because their zone is unknown."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """The declarative base of every VoxDialog table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _id() -> Mapped[str]:
    return mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)


def _tenant_fk() -> Mapped[str]:
    return mapped_column(String(ID_LENGTH), ForeignKey("tenants.id", ondelete="CASCADE"))


def _user_fk() -> Mapped[str]:
    return mapped_column(String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"))


def _created_at() -> Mapped[dt.datetime]:
    return mapped_column(UtcDateTime(), default=utcnow)


class Tenant(Base):
    """An organisation; every other row belongs to exactly one."""

    __tablename__ = "tenants"

    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[dt.datetime] = _created_at()


class User(Base):
    """A person (or service account) inside a tenant."""

    __tablename__ = "users"
    __table_args__ = (Index(None, "tenant_id"),)

    id: Mapped[str] = _id()
    tenant_id: Mapped[str] = _tenant_fk()
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    role: Mapped[str] = mapped_column(String(16), default="member")  # "admin" | "member"
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = _created_at()
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Personal preferences (language, STT choice, default agent, ...): validated by the API.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # Where the user last signed in: that address keeps its own sign-in budget while others
    # exhaust the account's ceiling (security/ratelimit.py LoginThrottle).
    last_sign_in_ip: Mapped[str | None] = mapped_column(String(64))


class ApiKey(Base):
    """A bearer key; only its SHA-256 is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (Index(None, "tenant_id", "user_id"), Index(None, "user_id"))

    id: Mapped[str] = _id()
    tenant_id: Mapped[str] = _tenant_fk()
    user_id: Mapped[str] = _user_fk()
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = _created_at()
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class VoiceSession(Base):
    """A voice conversation; the id is the Realtime session id."""

    __tablename__ = "voice_sessions"
    __table_args__ = (
        Index(None, "tenant_id", "user_id"),
        Index(None, "user_id"),
        Index(None, "status"),
    )

    id: Mapped[str] = mapped_column(String(SESSION_ID_LENGTH), primary_key=True)
    tenant_id: Mapped[str] = _tenant_fk()
    user_id: Mapped[str] = _user_fk()
    agent: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    client: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|ended|interrupted


class Message(Base):
    """One conversation item with its per-stage timings."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("session_id", "item_id"),
        Index(None, "session_id", "seq"),
        Index(None, "tenant_id", "user_id"),
        Index(None, "user_id"),
    )

    id: Mapped[str] = _id()
    session_id: Mapped[str] = mapped_column(
        String(SESSION_ID_LENGTH), ForeignKey("voice_sessions.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[str] = _tenant_fk()
    user_id: Mapped[str] = _user_fk()
    item_id: Mapped[str] = mapped_column(String(ITEM_ID_LENGTH))
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    audio_ms: Mapped[float | None] = mapped_column(Float)
    timings: Mapped[dict[str, float]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = _created_at()
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    seq: Mapped[int] = mapped_column(Integer)


class VoiceCommand(Base):
    """What the brain understood and did for one user turn."""

    __tablename__ = "voice_commands"
    __table_args__ = (
        Index(None, "session_id"),
        Index(None, "tenant_id", "user_id"),
        Index(None, "user_id"),
    )

    id: Mapped[str] = _id()
    session_id: Mapped[str | None] = mapped_column(
        String(SESSION_ID_LENGTH), ForeignKey("voice_sessions.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[str] = _tenant_fk()
    user_id: Mapped[str] = _user_fk()
    message_item_id: Mapped[str | None] = mapped_column(String(ITEM_ID_LENGTH))
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(64))
    entities: Mapped[dict[str, Any]] = mapped_column(JSON)
    confidence: Mapped[float] = mapped_column(Float)
    success: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    processing_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = _created_at()


class Project(Base):
    """A named list of tasks; names are unique per user, ignoring case."""

    __tablename__ = "projects"
    __table_args__ = (
        # ``name_key`` holds the case-folded name: a plain unique constraint then gives
        # case-insensitive uniqueness on every backend, without functional indexes.
        UniqueConstraint("tenant_id", "user_id", "name_key"),
        Index(None, "user_id"),
    )

    id: Mapped[str] = _id()
    tenant_id: Mapped[str] = _tenant_fk()
    user_id: Mapped[str] = _user_fk()
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name_key: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[dt.datetime] = _created_at()


class Task(Base):
    """A to-do item."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index(None, "tenant_id", "user_id", "done"),
        Index(None, "user_id"),
        Index(None, "project_id"),
    )

    id: Mapped[str] = _id()
    tenant_id: Mapped[str] = _tenant_fk()
    user_id: Mapped[str] = _user_fk()
    project_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("projects.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(Text)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    due_time: Mapped[dt.time | None] = mapped_column(Time)
    priority: Mapped[str | None] = mapped_column(String(8))  # Priority value
    created_at: Mapped[dt.datetime] = _created_at()
    completed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class LoginSession(Base):
    """One sign-in: the family of refresh tokens it rotates through (the JWT ``sid``).

    Revoking it (logout, reuse of a spent refresh token, account disabled) ends every access
    token and live socket of that sign-in.
    """

    __tablename__ = "login_sessions"
    __table_args__ = (Index(None, "tenant_id", "user_id"), Index(None, "user_id"))

    id: Mapped[str] = _id()
    tenant_id: Mapped[str] = _tenant_fk()
    user_id: Mapped[str] = _user_fk()
    created_at: Mapped[dt.datetime] = _created_at()
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(Base):
    """A refresh token by its ``jti``; spent once, then a reuse revokes its whole family."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index(None, "login_session_id"),)

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    login_session_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("login_sessions.id", ondelete="CASCADE")
    )
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class Agent(Base):
    """A persona with its provider chains, voice and turn-taking settings; shared in a tenant."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("tenant_id", "name_key"), Index(None, "user_id"))

    id: Mapped[str] = _id()
    tenant_id: Mapped[str] = _tenant_fk()
    user_id: Mapped[str] = _user_fk()  # who created it
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name_key: Mapped[str] = mapped_column(String(NAME_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="")
    system_prompt: Mapped[str | None] = mapped_column(Text)
    # Provider names from the server's settings, in chain order; empty = the server default.
    llm: Mapped[list[str]] = mapped_column(JSON, default=list)
    stt: Mapped[list[str]] = mapped_column(JSON, default=list)
    tts: Mapped[list[str]] = mapped_column(JSON, default=list)
    voice: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # voice, rate, pitch, volume
    greeting: Mapped[str | None] = mapped_column(Text)
    turn_detection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tools: Mapped[list[str]] = mapped_column(JSON, default=list)  # server tool names enabled
    created_at: Mapped[dt.datetime] = _created_at()
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AuditEvent(Base):
    """An auth or admin event. Kept when the tenant or user goes (no foreign keys)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "tenant_id", "created_at"), Index(None, "created_at"))

    id: Mapped[str] = _id()
    tenant_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # "success" | "failure" | "denied"
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = _created_at()


class IdempotencyKey(Base):
    """A write request made with an ``Idempotency-Key``, and the answer it got.

    ``owner`` is a hash of the credential that made it (keys are per credential); ``status``
    is None while the first request is still being handled.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("owner", "key"),
        Index(None, "created_at"),
    )

    id: Mapped[str] = _id()
    owner: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(128))
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _created_at()
