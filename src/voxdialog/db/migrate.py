"""Bring a database to the newest schema (``alembic upgrade head``), from code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from voxdialog.db.engine import create_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The PostgreSQL advisory lock held while migrating (any constant: the key space is ours).
_MIGRATION_LOCK_KEY = 0x766F78_6D696772  # "vox" "migr"


def alembic_config(url: str) -> Config:
    """An Alembic configuration built in code (no ``alembic.ini``), for ``url``.

    The script location is the package's own ``migrations`` folder, so this works from an
    installed wheel as well as from a checkout.
    """
    from alembic.config import Config  # deferred: Alembic takes a second to import

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
    from alembic import command

    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(url: str) -> None:
    """Apply every pending migration to the database at ``url``; a no-op when up to date.

    Safe to call from several processes at once: they take turns and only the first one
    changes anything.

    Args:
        url: A SQLAlchemy async URL (the same one the server connects with).
    """
    engine = create_engine(url)
    try:
        # A restart of an up-to-date database needs no Alembic at all (a faster start).
        if await _at_head(engine):
            return
        config = alembic_config(url)
        # One transaction: a failure part-way leaves the previous schema intact.
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, config)
    finally:
        await engine.dispose()


_REVISION = re.compile(r'^revision: str = "([^"]+)"', re.MULTILINE)
_DOWN = re.compile(r'^down_revision: str \| None = "([^"]+)"', re.MULTILINE)


def head_revision() -> str:
    """The newest migration's revision id, read from the migration files themselves."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revisions.update(_REVISION.findall(source))
        parents.update(_DOWN.findall(source))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must have one head, not {sorted(heads)}")
    return heads.pop()


async def _at_head(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:  # a new database: no version table yet
        return False
    return bool(found == head_revision())
