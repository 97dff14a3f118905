"""Fixtures of the store tests: every test that uses a database runs on SQLite and PostgreSQL.

SQLite: a migrated template file is copied for each test. PostgreSQL: one database is
migrated once per run and kept as a pristine template; the tests share a copy of it that is
emptied before each test (copying a database per test costs about 0.4 s), and tests that
change the schema get a copy of their own.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from voxdialog.db.engine import Database
from voxdialog.db.migrate import migrate
from voxdialog.db.models import Base, Tenant, User, new_id, utcnow
from voxdialog.security.principal import Scope
from voxdialog.testing.databases import (
    BACKENDS,
    Backend,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
    postgres_available,
    sqlite_url,
)

MakeScope = Callable[..., Awaitable[Scope]]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``only_on`` marker."""
    config.addinivalue_line(
        "markers",
        "only_on(backend, reason): the test checks something only that backend has",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that needs a database once per backend, or on the one it is marked for."""
    if "backend" not in metafunc.fixturenames:
        return
    backends: list[str] = list(BACKENDS)
    only = metafunc.definition.get_closest_marker("only_on")
    if only is not None:
        if len(only.args) != 1 or only.args[0] not in BACKENDS or not only.kwargs.get("reason"):
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid}: write only_on(<backend>, reason=...)"
            )
        backends = [only.args[0]]
    metafunc.parametrize("backend", backends, ids=backends, indirect=True)


def require_postgres_or_skip() -> None:
    """Skip the test when PostgreSQL is unreachable, or fail it when running in CI."""
    if asyncio.run(postgres_available()):
        return
    where = make_url(postgres_admin_url()).render_as_string(hide_password=True)
    message = f"PostgreSQL is not reachable at {where} (set VOXDIALOG_TEST_POSTGRES_URL)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server() -> None:
    """Checked once per run: PostgreSQL answers (else skip, or fail in CI)."""
    require_postgres_or_skip()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    """The backend this run of the test uses (``sqlite`` or ``postgresql``)."""
    name: Backend = request.param
    if name == "postgresql":
        request.getfixturevalue("postgres_server")
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run; tests get copies of it."""
    path = tmp_path_factory.mktemp("template") / "voxdialog.db"
    # Disposing the engine at the end of migrate() checkpoints the WAL into the main file.
    asyncio.run(migrate(sqlite_url(path)))
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_server: None) -> Iterator[str]:
    """A PostgreSQL database migrated to head once per run, never connected to again."""
    url = asyncio.run(create_postgres_database("vxtest_template"))
    try:
        asyncio.run(migrate(url))
        yield url
    finally:
        asyncio.run(drop_postgres_database(url))


@pytest.fixture(scope="session")
def postgres_shared(postgres_template: str) -> Iterator[str]:
    """A copy of the template that the tests which keep the schema take turns on."""
    url = asyncio.run(create_postgres_database("vxtest_shared", template_url=postgres_template))
    try:
        yield url
    finally:
        asyncio.run(drop_postgres_database(url))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where this test's SQLite file lives (in a folder that does not exist yet)."""
    return tmp_path / "data" / "voxdialog.db"


def _copy_sqlite_template(template_url: str, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(str(make_url(template_url).database), path)
    return sqlite_url(path)


@pytest.fixture
def template_url(backend: Backend, request: pytest.FixtureRequest) -> str:
    """The migrated template of this test's backend (a SQLite file's URL, or a database's)."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return sqlite_url(template)
    url: str = request.getfixturevalue("postgres_template")
    return url


@pytest.fixture
async def db_url(backend: Backend, db_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of this test's own (``db_path`` on SQLite)."""
    if backend == "sqlite":
        yield sqlite_url(db_path)
        return
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture
def _migrated_url(backend: Backend, db_path: Path, request: pytest.FixtureRequest) -> str:
    # Synchronous on purpose: the session fixtures it may start run their own event loop.
    if backend == "sqlite":
        return _copy_sqlite_template(
            sqlite_url(request.getfixturevalue("sqlite_template")), db_path
        )
    url: str = request.getfixturevalue("postgres_shared")
    return url


async def _empty_every_table(database: Database) -> None:
    # DELETE, not TRUNCATE: on tables this small it is ten times faster.
    async with database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())


@pytest.fixture
async def db(backend: Backend, _migrated_url: str) -> AsyncIterator[Database]:
    """A migrated database without rows, closed after the test; it must keep its schema.

    On SQLite it is the file at ``db_path``. On PostgreSQL it is shared between tests, so a
    test that changes the schema takes `private_db` instead.
    """
    database = Database(_migrated_url)
    try:
        if backend == "postgresql":
            await _empty_every_table(database)
        yield database
    finally:
        await database.close()


@pytest.fixture
async def private_db(backend: Backend, db_path: Path, template_url: str) -> AsyncIterator[Database]:
    """A migrated database of this test's own, which it may alter or downgrade."""
    if backend == "sqlite":
        url = _copy_sqlite_template(template_url, db_path)
    else:
        url = await create_postgres_database(template_url=template_url)
    database = Database(url)
    try:
        yield database
    finally:
        await database.close()
        if backend == "postgresql":
            await drop_postgres_database(url)


@pytest.fixture
def make_scope(db: Database) -> MakeScope:
    """Create a user (in a new tenant, or in ``tenant_id``) and return its scope.

    The user goes into ``db`` unless another ``database`` is given.
    """

    async def make(
        *, tenant_id: str | None = None, disabled: bool = False, database: Database = db
    ) -> Scope:
        async with database.sessions() as session, session.begin():
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
