"""Sign-ins and their refresh-token families (rotation with reuse detection)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import cast

from sqlalchemy import CursorResult, select, update

from voxdialog.db.engine import Database
from voxdialog.db.models import LoginSession, RefreshToken, User, utcnow
from voxdialog.security.principal import Scope


class Rotation(enum.Enum):
    """What happened to a presented refresh token."""

    ROTATED = "rotated"  # spent now; the new token is stored
    REUSED = "reused"  # spent before: the whole family is revoked (token theft)
    INVALID = "invalid"  # unknown, expired, revoked family, or disabled user


async def start_login(
    db: Database,
    scope: Scope,
    *,
    login_session_id: str,
    refresh_jti: str,
    expires_at: dt.datetime,
) -> None:
    """Store a new sign-in and its first refresh token."""
    now = utcnow()
    async with db.sessions() as session, session.begin():
        session.add(
            LoginSession(
                id=login_session_id,
                tenant_id=scope.tenant_id,
                user_id=scope.user_id,
                created_at=now,
                expires_at=expires_at,
            )
        )
        await session.flush()
        session.add(
            RefreshToken(
                jti=refresh_jti,
                login_session_id=login_session_id,
                issued_at=now,
                expires_at=expires_at,
            )
        )


async def rotate_refresh(
    db: Database,
    *,
    login_session_id: str,
    jti: str,
    new_jti: str,
    new_expires_at: dt.datetime,
) -> Rotation:
    """Spend refresh token ``jti`` and store its successor ``new_jti``, atomically.

    The spend is a conditional UPDATE (``used_at IS NULL``), so two concurrent refreshes
    with the same token cannot both succeed: the loser sees a reuse.
    """
    now = utcnow()
    async with db.sessions() as session, session.begin():
        login = await session.scalar(
            select(LoginSession)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.id == login_session_id, User.disabled.is_(False))
        )
        if login is None or login.revoked_at is not None or login.expires_at <= now:
            return Rotation.INVALID
        result = cast(
            CursorResult[tuple[()]],
            await session.execute(
                update(RefreshToken)
                .where(
                    RefreshToken.jti == jti,
                    RefreshToken.login_session_id == login_session_id,
                    RefreshToken.used_at.is_(None),
                    RefreshToken.expires_at > now,
                )
                .values(used_at=now)
            ),
        )
        if result.rowcount == 1:
            session.add(
                RefreshToken(
                    jti=new_jti,
                    login_session_id=login_session_id,
                    issued_at=now,
                    expires_at=new_expires_at,
                )
            )
            return Rotation.ROTATED
        known = await session.scalar(
            select(RefreshToken.jti).where(
                RefreshToken.jti == jti, RefreshToken.login_session_id == login_session_id
            )
        )
        if known is None:
            return Rotation.INVALID
        login.revoked_at = now
        login.revoked_reason = "refresh_reuse"
        return Rotation.REUSED


async def revoke_login(db: Database, scope: Scope, login_session_id: str, reason: str) -> bool:
    """End one of the user's sign-ins; False if it is not theirs or already ended."""
    async with db.sessions() as session, session.begin():
        login = await session.scalar(
            select(LoginSession).where(
                LoginSession.id == login_session_id,
                LoginSession.tenant_id == scope.tenant_id,
                LoginSession.user_id == scope.user_id,
            )
        )
        if login is None or login.revoked_at is not None:
            return False
        login.revoked_at = utcnow()
        login.revoked_reason = reason
        return True


async def login_role(db: Database, login_session_id: str, scope: Scope) -> str | None:
    """The user's current role if the sign-in is unrevoked, unexpired and the user enabled."""
    async with db.reads() as session:
        found = (
            await session.execute(
                select(LoginSession.revoked_at, LoginSession.expires_at, User.disabled, User.role)
                .join(User, User.id == LoginSession.user_id)
                .where(
                    LoginSession.id == login_session_id,
                    LoginSession.tenant_id == scope.tenant_id,
                    LoginSession.user_id == scope.user_id,
                )
            )
        ).first()
    if found is None:
        return None
    revoked_at, expires_at, disabled, role = found
    if revoked_at is not None or disabled or expires_at <= utcnow():
        return None
    return str(role)
