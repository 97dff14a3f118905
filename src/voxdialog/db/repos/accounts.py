"""Tenants and users: the bootstrap of the local administrator."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text

from voxdialog.db.engine import Database
from voxdialog.db.models import Tenant, User, utcnow
from voxdialog.security.principal import Scope

LOCAL_TENANT_NAME = "local"
LOCAL_ADMIN_NAME = "admin"
# The PostgreSQL advisory lock held while bootstrapping (any constant: the key space is ours).
_BOOTSTRAP_LOCK_KEY = 0x766F78_61646D6E  # "vox" "admn"


@dataclass(frozen=True, slots=True)
class LocalAdmin:
    """The administrator a single-user installation acts as.

    Attributes:
        scope: The administrator's tenant and user.
        created: True on the start that created it (worth a log line).
    """

    scope: Scope
    created: bool


async def ensure_local_admin(db: Database) -> LocalAdmin:
    """Return the local administrator, creating tenant "local" and user "admin" on first start.

    Later starts return the oldest enabled admin, which is the bootstrapped one unless it was
    disabled or demoted. If no enabled admin is left, a new one is created, so a local
    installation can never lock itself out.
    """
    async with db.sessions() as session, session.begin():
        if db.engine.dialect.name == "postgresql":
            # Several processes starting at once would each create an admin; they take turns
            # here and the later ones find the first one's. (SQLite's write lock does this.)
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BOOTSTRAP_LOCK_KEY}
            )
        admin = await session.scalar(
            select(User)
            .where(User.role == "admin", User.disabled.is_(False))
            .order_by(User.created_at, User.id)
            .limit(1)
        )
        if admin is not None:
            return LocalAdmin(Scope(tenant_id=admin.tenant_id, user_id=admin.id), False)
        tenant = await session.scalar(
            select(Tenant)
            .where(Tenant.name == LOCAL_TENANT_NAME)
            .order_by(Tenant.created_at, Tenant.id)
            .limit(1)
        )
        now = utcnow()
        if tenant is None:
            tenant = Tenant(name=LOCAL_TENANT_NAME, created_at=now)
            session.add(tenant)
            await session.flush()
        admin = User(
            tenant_id=tenant.id,
            email=None,
            display_name=LOCAL_ADMIN_NAME,
            role="admin",
            password_hash=None,
            created_at=now,
            disabled=False,
        )
        session.add(admin)
        await session.flush()
        return LocalAdmin(Scope(tenant_id=admin.tenant_id, user_id=admin.id), True)
