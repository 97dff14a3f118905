"""Bring a database to the newest schema (``alembic upgrade head``), from code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from voxdialog.db.engine import create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


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
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(url: str) -> None:
    """Apply every pending migration to the database at ``url``; a no-op when up to date.

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
