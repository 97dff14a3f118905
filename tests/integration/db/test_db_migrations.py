"""Migrations: from empty to head, matching the models, idempotent, reversible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from voxdialog.db.engine import Database, create_engine
from voxdialog.db.migrate import alembic_config, migrate
from voxdialog.db.models import Base, Tenant, new_id, utcnow


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrating_an_empty_database_creates_every_table_of_the_models(
    db_url: str,
) -> None:
    url = db_url
    await migrate(url)
    database = Database(url)
    try:
        async with database.engine.connect() as conn:
            tables = await conn.run_sync(_tables)
    finally:
        await database.close()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


async def test_migrated_schema_matches_the_models_exactly(db: Database) -> None:
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_schema_comparison_notices_a_missing_index(db: Database) -> None:
    # Guards the test above: the comparison must be able to see drift at all.
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_tasks_project_id"))
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert [entry[0] for entry in diff] == ["add_index"]


async def test_migrating_twice_keeps_the_data_and_the_head_revision(db_url: str) -> None:
    url = db_url
    await migrate(url)
    database = Database(url)
    try:
        async with database.sessions() as session, session.begin():
            session.add(Tenant(id=new_id(), name="kept", created_at=utcnow()))
        await migrate(url)
        async with database.engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            names = (await conn.execute(text("SELECT name FROM tenants"))).scalars().all()
    finally:
        await database.close()
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert [row[0] for row in versions] == [head]
    assert names == ["kept"]


async def test_downgrade_to_base_drops_every_table(db: Database) -> None:
    config = alembic_config(db.url)

    def downgrade(connection: Connection) -> set[str]:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        return _tables(connection)

    async with db.engine.begin() as conn:
        assert await conn.run_sync(downgrade) == {"alembic_version"}


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
        "busy_timeout": 5000,
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
