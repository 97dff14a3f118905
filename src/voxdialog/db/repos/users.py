"""Tenants and users: sign-up, lookup by email, profiles, personal settings, administration."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError

from voxdialog.db.engine import Database
from voxdialog.db.errors import StoreError
from voxdialog.db.models import (
    LoginSession,
    Tenant,
    User,
    VoiceSession,
    utcnow,
)
from voxdialog.security.principal import Scope


class EmailTakenError(StoreError):
    """Another account already uses this email address."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the API shows it (never the password hash)."""

    id: str
    tenant_id: str
    email: str | None
    display_name: str
    role: str
    disabled: bool
    settings: Mapping[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def scope(self) -> Scope:
        """The user's data scope."""
        return Scope(tenant_id=self.tenant_id, user_id=self.id)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a login checks: the user, the stored password hash (None: no password set) and
    the address the user last signed in from (None: never)."""

    user: UserRecord
    password_hash: str | None
    last_sign_in_ip: str | None = None


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """A tenant with its usage counts."""

    id: str
    name: str
    created_at: dt.datetime
    users: int
    voice_sessions: int


def normalize_email(email: str) -> str:
    """The stored form of an email address: trimmed, lower case."""
    return email.strip().lower()


def _record(row: User) -> UserRecord:
    return UserRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        email=row.email,
        display_name=row.display_name,
        role=row.role,
        disabled=row.disabled,
        settings=dict(row.settings or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def create_account(
    db: Database,
    *,
    email: str,
    password_hash: str,
    display_name: str,
    tenant_name: str | None,
    tenant_id: str | None = None,
    role: str = "admin",
) -> UserRecord:
    """Create a user; in a new tenant (its admin) unless ``tenant_id`` names an existing one.

    Raises:
        EmailTakenError: The address is already registered.
    """
    now = utcnow()
    try:
        async with db.sessions() as session, session.begin():
            if tenant_id is None:
                tenant = Tenant(name=tenant_name or display_name, created_at=now)
                session.add(tenant)
                await session.flush()
                tenant_id = tenant.id
            user = User(
                tenant_id=tenant_id,
                email=normalize_email(email),
                display_name=display_name,
                role=role,
                password_hash=password_hash,
                created_at=now,
                updated_at=now,
                disabled=False,
                settings={},
            )
            session.add(user)
            await session.flush()
            return _record(user)
    except IntegrityError as exc:
        raise EmailTakenError("email already registered") from exc


async def find_credentials(db: Database, email: str) -> Credentials | None:
    """The user registered under ``email`` with its password hash, or None."""
    async with db.sessions() as session:
        row = await session.scalar(select(User).where(User.email == normalize_email(email)))
        if row is None:
            return None
        return Credentials(_record(row), row.password_hash, row.last_sign_in_ip)


async def note_sign_in_ip(db: Database, scope: Scope, ip: str) -> None:
    """Remember ``ip`` as the address the user of ``scope`` last signed in from."""
    async with db.sessions() as session, session.begin():
        await session.execute(
            update(User)
            .where(User.id == scope.user_id, User.tenant_id == scope.tenant_id)
            .values(last_sign_in_ip=ip[:64])
        )


async def get_user(db: Database, scope: Scope) -> UserRecord | None:
    """The user of ``scope`` (None if it does not exist in that tenant)."""
    async with db.sessions() as session:
        row = await session.scalar(
            select(User).where(User.id == scope.user_id, User.tenant_id == scope.tenant_id)
        )
        return _record(row) if row is not None else None


async def set_password_hash(db: Database, scope: Scope, password_hash: str) -> None:
    """Store a new password hash (e.g. an upgraded one after a login)."""
    async with db.sessions() as session, session.begin():
        row = await session.scalar(
            select(User).where(User.id == scope.user_id, User.tenant_id == scope.tenant_id)
        )
        if row is not None:
            row.password_hash = password_hash
            row.updated_at = utcnow()


async def update_profile(
    db: Database, scope: Scope, *, display_name: str | None = None, email: str | None = None
) -> UserRecord | None:
    """Change the user's display name and/or email.

    Raises:
        EmailTakenError: ``email`` belongs to another account.
    """
    try:
        async with db.sessions() as session, session.begin():
            row = await session.scalar(
                select(User).where(User.id == scope.user_id, User.tenant_id == scope.tenant_id)
            )
            if row is None:
                return None
            if display_name is not None:
                row.display_name = display_name
            if email is not None:
                row.email = normalize_email(email)
            row.updated_at = utcnow()
            await session.flush()
            return _record(row)
    except IntegrityError as exc:
        raise EmailTakenError("email already registered") from exc


async def put_settings(
    db: Database, scope: Scope, settings: Mapping[str, Any]
) -> UserRecord | None:
    """Replace the user's personal settings."""
    async with db.sessions() as session, session.begin():
        row = await session.scalar(
            select(User).where(User.id == scope.user_id, User.tenant_id == scope.tenant_id)
        )
        if row is None:
            return None
        row.settings = dict(settings)
        row.updated_at = utcnow()
        await session.flush()
        return _record(row)


async def user_is_active(db: Database, scope: Scope) -> tuple[bool, str]:
    """Whether the user exists in its tenant and is enabled; with its current role."""
    async with db.reads() as session:
        found = (
            await session.execute(
                select(User.disabled, User.role).where(
                    User.id == scope.user_id, User.tenant_id == scope.tenant_id
                )
            )
        ).first()
    if found is None:
        return False, ""
    disabled, role = found
    return not disabled, str(role)


# --- administration -----------------------------------------------------------------------


async def list_users(
    db: Database, tenant_id: str | None, *, limit: int = 50, offset: int = 0
) -> list[UserRecord]:
    """Users of one tenant (or of every tenant when ``tenant_id`` is None), oldest first."""
    query = select(User)
    if tenant_id is not None:
        query = query.where(User.tenant_id == tenant_id)
    async with db.sessions() as session:
        rows = await session.scalars(
            query.order_by(User.created_at, User.id).limit(limit).offset(offset)
        )
        return [_record(row) for row in rows]


def _visible_user(tenant_id: str | None, user_id: str) -> Select[User]:
    """The user ``user_id``, inside ``tenant_id`` unless that is None (operator view)."""
    query = select(User).where(User.id == user_id)
    if tenant_id is not None:
        query = query.where(User.tenant_id == tenant_id)
    return query


async def get_tenant_user(db: Database, tenant_id: str | None, user_id: str) -> UserRecord | None:
    """A user by id, inside ``tenant_id`` unless that is None (operator view)."""
    query = _visible_user(tenant_id, user_id)
    async with db.sessions() as session:
        row = await session.scalar(query)
        return _record(row) if row is not None else None


async def set_user_state(
    db: Database,
    tenant_id: str | None,
    user_id: str,
    *,
    role: str | None = None,
    disabled: bool | None = None,
    display_name: str | None = None,
) -> UserRecord | None:
    """Change a user's role, enabled state or name (admin action); None if not visible."""
    query = _visible_user(tenant_id, user_id)
    async with db.sessions() as session, session.begin():
        row = await session.scalar(query)
        if row is None:
            return None
        if role is not None:
            row.role = role
        if disabled is not None:
            row.disabled = disabled
        if display_name is not None:
            row.display_name = display_name
        row.updated_at = utcnow()
        await session.flush()
        return _record(row)


async def delete_user(db: Database, tenant_id: str | None, user_id: str) -> bool:
    """Delete a user and everything they own (cascade); False if not visible."""
    query = _visible_user(tenant_id, user_id)
    async with db.sessions() as session, session.begin():
        row = await session.scalar(query)
        if row is None:
            return False
        await session.delete(row)
        return True


async def count_admins(db: Database, tenant_id: str) -> int:
    """Enabled admins of a tenant (the last one may not be demoted or disabled)."""
    async with db.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.tenant_id == tenant_id, User.role == "admin", User.disabled.is_(False))
        )
        return int(count or 0)


async def list_tenants(
    db: Database, tenant_id: str | None, *, limit: int = 50, offset: int = 0
) -> list[TenantRecord]:
    """Tenants with user and voice-session counts (one tenant unless ``tenant_id`` is None)."""
    users = (
        select(func.count())
        .select_from(User)
        .where(User.tenant_id == Tenant.id)
        .correlate(Tenant)
        .scalar_subquery()
    )
    sessions = (
        select(func.count())
        .select_from(VoiceSession)
        .where(VoiceSession.tenant_id == Tenant.id)
        .correlate(Tenant)
        .scalar_subquery()
    )
    query = select(Tenant, users, sessions)
    if tenant_id is not None:
        query = query.where(Tenant.id == tenant_id)
    async with db.sessions() as session:
        rows = await session.execute(
            query.order_by(Tenant.created_at, Tenant.id).limit(limit).offset(offset)
        )
        return [
            TenantRecord(t.id, t.name, t.created_at, int(u or 0), int(s or 0)) for t, u, s in rows
        ]


async def end_user_access(db: Database, user_id: str, reason: str) -> None:
    """Revoke every sign-in of a user (disable, password change); API keys of a disabled
    user are refused at verification, so they work again if the user is enabled again."""
    now = utcnow()
    async with db.sessions() as session, session.begin():
        for login in await session.scalars(
            select(LoginSession).where(
                LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None)
            )
        ):
            login.revoked_at = now
            login.revoked_reason = reason
