"""Fixtures of the store tests: a migrated SQLite file per test, and users to own data."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from voxdialog.brain.base import Scope
from voxdialog.db.engine import Database
from voxdialog.db.migrate import migrate
from voxdialog.db.models import Tenant, User, new_id, utcnow

MakeScope = Callable[..., Awaitable[Scope]]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where this test's database file lives (in a folder that does not exist yet)."""
    return tmp_path / "data" / "voxdialog.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    """The async SQLAlchemy URL of ``db_path``."""
    return f"sqlite+aiosqlite:///{db_path}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file migrated to head once per test run; tests get copies of it."""
    path = tmp_path_factory.mktemp("template") / "voxdialog.db"
    # Disposing the engine at the end of migrate() checkpoints the WAL into the main file.
    asyncio.run(migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
async def db(db_path: Path, db_url: str, migrated_template: Path) -> AsyncIterator[Database]:
    """A freshly migrated database (a copy of the template), closed after the test."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_template, db_path)
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def make_scope(db: Database) -> MakeScope:
    """Create a user (in a new tenant, or in ``tenant_id``) and return its scope."""

    async def make(*, tenant_id: str | None = None, disabled: bool = False) -> Scope:
        async with db.sessions() as session, session.begin():
            if tenant_id is None:
                tenant = Tenant(id=new_id(), name="acme", created_at=utcnow())
                session.add(tenant)
                await session.flush()
                tenant_id = tenant.id
            user = User(
                id=new_id(),
                tenant_id=tenant_id,
                display_name="someone",
                role="member",
                created_at=utcnow(),
                disabled=disabled,
            )
            session.add(user)
        return Scope(tenant_id=tenant_id, user_id=user.id)

    return make
