"""ensure_local_admin: the first start creates the local admin, later starts find it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select, update

from voxdialog.db.engine import Database
from voxdialog.db.models import Tenant, User
from voxdialog.db.repos.accounts import ensure_local_admin
from voxdialog.security.principal import Scope

MakeScope = Callable[..., Awaitable[Scope]]


async def _count(db: Database, model: type[Tenant] | type[User]) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_first_start_creates_tenant_local_and_user_admin(db: Database) -> None:
    admin = await ensure_local_admin(db)
    assert admin.created
    async with db.sessions() as session:
        user = await session.get(User, admin.scope.user_id)
        tenant = await session.get(Tenant, admin.scope.tenant_id)
    assert user is not None
    assert tenant is not None
    assert (tenant.name, user.display_name, user.role, user.disabled) == (
        "local",
        "admin",
        "admin",
        False,
    )
    assert (user.email, user.password_hash, user.tenant_id) == (None, None, tenant.id)


async def test_later_starts_return_the_same_admin_without_creating_anything(
    db: Database,
) -> None:
    first = await ensure_local_admin(db)
    second = await ensure_local_admin(db)
    third = await ensure_local_admin(db)
    assert (second.created, third.created) == (False, False)
    assert second.scope == first.scope == third.scope
    assert (await _count(db, Tenant), await _count(db, User)) == (1, 1)


async def test_members_added_later_do_not_change_the_local_admin(
    db: Database, make_scope: MakeScope
) -> None:
    first = await ensure_local_admin(db)
    await make_scope(tenant_id=first.scope.tenant_id)
    await make_scope()
    again = await ensure_local_admin(db)
    assert (again.scope, again.created) == (first.scope, False)


async def test_a_new_admin_is_created_when_the_only_admin_was_disabled(db: Database) -> None:
    first = await ensure_local_admin(db)
    async with db.sessions() as session, session.begin():
        await session.execute(
            update(User).where(User.id == first.scope.user_id).values(disabled=True)
        )
    replacement = await ensure_local_admin(db)
    assert replacement.created
    assert replacement.scope.user_id != first.scope.user_id
    assert replacement.scope.tenant_id == first.scope.tenant_id
    assert await _count(db, Tenant) == 1


async def test_servers_starting_at_once_create_one_admin(db: Database) -> None:
    # Each Database stands for one server process: its own engine and connections.
    starts = [Database(db.url) for _ in range(6)]
    try:
        admins = await asyncio.gather(*(ensure_local_admin(each) for each in starts))
    finally:
        await asyncio.gather(*(each.close() for each in starts))
    assert [a.created for a in admins].count(True) == 1
    assert len({a.scope for a in admins}) == 1
    assert (await _count(db, Tenant), await _count(db, User)) == (1, 1)
