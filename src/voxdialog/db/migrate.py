"""Bring a database to the newest schema (``alembic upgrade head``), from code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from voxdialog.db.engine import create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The PostgreSQL advisory lock held while migrating (any constant: the key space is ours).
_MIGRATION_LOCK_KEY = 0x766F78_6D696772  # "vox" "migr"


def alembic_config(url: str) -> Config:
    """An Alembic configuration built in code (no ``alembic.ini``), for ``url``.

    The script location is the package's own ``migrations`` folder, so this works from an
    installed wheel as well as from a checkout.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolates "%": a password such as "p%40ss" must survive it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade(connection: Connection, config: Config) -> None:
    if connection.dialect.name == "postgresql":
        # Several server processes may start at once; without this lock each would see the
        # same old revision and apply it too, failing on "relation already exists". SQLite
        # needs nothing: its IMMEDIATE transactions already take the write lock up front.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(url: str) -> None:
    """Apply every pending migration to the database at ``url``; a no-op when up to date.

    Safe to call from several processes at once: they take turns and only the first one
    changes anything.

    Args:
        url: A SQLAlchemy async URL (the same one the server connects with).
    """
    config = alembic_config(url)
    engine = create_engine(url)
    try:
        # One transaction: a failure part-way leaves the previous schema intact.
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, config)
    finally:
        await engine.dispose()
