"""The database, its -wal/-shm files, the keys and the data dir are owner-only (R14/R15)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from voxdialog.db.engine import Database
from voxdialog.runtime import Runtime
from voxdialog.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _modes(folder: Path) -> dict[str, int]:
    return {p.name: _mode(p) for p in folder.iterdir()}


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The common default umask, under which files come out 0644 unless made otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


async def _write(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS t (x TEXT)"))
        await conn.execute(text("INSERT INTO t VALUES ('x')"))


async def test_a_new_sqlite_database_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = Database(f"sqlite+aiosqlite:///{data / 'voxdialog.db'}")
    try:
        await _write(db)
        files = _modes(data)
    finally:
        await db.close()
    assert set(files) >= {"voxdialog.db", "voxdialog.db-wal", "voxdialog.db-shm"}
    assert files == dict.fromkeys(files, 0o600)
    assert _mode(data) == 0o700


async def test_an_older_world_readable_database_is_tightened_at_start(tmp_path: Path) -> None:
    path = tmp_path / "voxdialog.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await _write(db)
    await db.close()
    for p in (path, path.with_name("voxdialog.db-wal")):
        p.touch()
        p.chmod(0o644)
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await _write(db)
        files = _modes(tmp_path)  # while open: closing checkpoints and removes the -wal
    finally:
        await db.close()
    assert "voxdialog.db-wal" in files
    assert files == dict.fromkeys(files, 0o600)


async def test_the_runtime_makes_its_data_dir_and_keys_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    runtime = Runtime(Settings(data_dir=data))
    try:
        await runtime.start(load_models=False)
    finally:
        await runtime.close()
    assert _mode(data) == 0o700
    files = _modes(data)
    assert {"voxdialog.db", "jwt-key", "local-api-key"} <= set(files)
    assert files == dict.fromkeys(files, 0o600)
