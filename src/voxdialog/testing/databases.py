"""Throwaway databases for tests and benchmarks, on SQLite or on a PostgreSQL server.

PostgreSQL is reached through ``VOXDIALOG_TEST_POSTGRES_URL`` (an async URL of a maintenance
database, by default ``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``); the role
must be allowed to create and drop databases.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

Backend = Literal["sqlite", "postgresql"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")

POSTGRES_URL_ENV = "VOXDIALOG_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,29}")  # + "_" + 32 hex digits fits in 63 characters
_CONNECT_TIMEOUT_S = 2.0


def postgres_admin_url() -> str:
    """The URL of the PostgreSQL maintenance database throwaway databases are created from."""
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_ADMIN_URL


def sqlite_url(path: Path) -> str:
    """The async SQLAlchemy URL of the SQLite file at ``path``."""
    return f"sqlite+aiosqlite:///{path}"


def _autocommit_engine(url: URL, *, timeout_s: float = _CONNECT_TIMEOUT_S) -> AsyncEngine:
    # CREATE and DROP DATABASE refuse to run inside a transaction block.
    return create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"timeout": timeout_s},
    )


def _quoted(engine: AsyncEngine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote_identifier(name)


async def postgres_available(timeout_s: float = _CONNECT_TIMEOUT_S) -> bool:
    """Whether the server of `postgres_admin_url` accepts a connection within ``timeout_s``."""
    engine = _autocommit_engine(make_url(postgres_admin_url()), timeout_s=timeout_s)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, TimeoutError, SQLAlchemyError):
        return False
    finally:
        await engine.dispose()
    return True


async def create_postgres_database(
    prefix: str = "vxtest", *, template_url: str | None = None
) -> str:
    """Create an empty database with a unique name on the server of `postgres_admin_url`.

    Args:
        prefix: The start of the name: lowercase letters, digits and ``_``, at most 30.
        template_url: A database to copy (schema and rows) instead of an empty one; nobody
            may be connected to it meanwhile.

    Returns:
        The async URL of the new database (same server and credentials as the admin URL).

    Raises:
        ValueError: ``prefix`` is not a plain lowercase identifier.
    """
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"database prefix must match {_PREFIX.pattern}")
    admin = make_url(postgres_admin_url())
    name = f"{prefix}_{uuid.uuid4().hex}"
    engine = _autocommit_engine(admin)
    try:
        statement = f"CREATE DATABASE {_quoted(engine, name)}"
        if template_url is not None:
            template = make_url(template_url).database
            if not template:
                raise ValueError("template_url names no database")
            statement += f" TEMPLATE {_quoted(engine, template)}"
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()
    return admin.set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    """Drop the database of ``url`` (nothing happens if it is gone), disconnecting its users.

    Raises:
        ValueError: ``url`` names no database, or the maintenance database itself.
    """
    target = make_url(url)
    maintenance = make_url(postgres_admin_url()).database or "postgres"
    if not target.database or target.database == maintenance:
        raise ValueError("refusing to drop the maintenance database (or none)")
    engine = _autocommit_engine(target.set(database=maintenance))
    try:
        async with engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": target.database},
            )
            await conn.execute(text(f"DROP DATABASE IF EXISTS {_quoted(engine, target.database)}"))
    finally:
        await engine.dispose()


@asynccontextmanager
async def throwaway_database(
    backend: Backend, directory: Path, *, prefix: str = "vxtest"
) -> AsyncIterator[str]:
    """An empty database on ``backend`` for the duration of the block; yields its async URL.

    Args:
        backend: ``"sqlite"`` (a file in ``directory``) or ``"postgresql"`` (a new database on
            the server of `postgres_admin_url`, dropped afterwards).
        directory: Where the SQLite file goes; unused for PostgreSQL.
        prefix: The start of the file or database name.
    """
    if backend == "sqlite":
        yield sqlite_url(directory / f"{prefix}_{uuid.uuid4().hex}.db")
        return
    url = await create_postgres_database(prefix)
    try:
        yield url
    finally:
        await drop_postgres_database(url)
