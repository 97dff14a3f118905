"""The engine: SQLite pragmas and folders, PostgreSQL pooling, and pinging either."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from voxdialog.db.engine import APPLICATION_NAME, Database, create_engine


@pytest.mark.only_on("sqlite", reason="WAL, synchronous and busy_timeout are SQLite PRAGMAs")
async def test_sqlite_connections_get_wal_foreign_keys_and_a_busy_timeout(db: Database) -> None:
    async with db.engine.connect() as conn:
        pragmas = {
            name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 20000,
    }


async def test_engine_creates_the_missing_parent_folder_of_the_database(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "voxdialog.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert path.is_file()


async def test_ping_succeeds_on_a_reachable_database(db: Database) -> None:
    await db.ping()


async def test_foreign_keys_are_enforced(db: Database) -> None:
    # SQLite ignores them unless told to; both backends must refuse an orphan alike.
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (id, tenant_id, display_name, role, created_at, disabled)"
                    " VALUES ('u1', 'no-such-tenant', 'x', 'member', CURRENT_TIMESTAMP, false)"
                )
            )


@pytest.mark.only_on("postgresql", reason="application_name is a PostgreSQL server setting")
async def test_postgres_connections_carry_the_application_name(db: Database) -> None:
    async with db.engine.connect() as conn:
        name = (await conn.execute(text("SELECT current_setting('application_name')"))).scalar()
    assert name == APPLICATION_NAME


@pytest.mark.only_on("postgresql", reason="only a database server can drop pooled connections")
async def test_a_pooled_connection_the_server_killed_is_replaced_before_use(db: Database) -> None:
    async with db.engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
    # Another engine: the pool would hand back the very connection to be killed.
    killer = create_engine(db.url)
    try:
        async with killer.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await killer.dispose()
    await db.ping()
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar() != pid
