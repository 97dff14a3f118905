"""R14: with an encryption key, task titles are sealed at rest, bound to their row, rotated.

Runs on SQLite (also scanning the database file and its -wal for the canary) and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tests.integration.db.conftest import MakeScope
from voxdialog.brain.tasks import NewTask
from voxdialog.db.engine import Database
from voxdialog.db.repos.task_queries import TaskChanges, get_task_detail, update_task
from voxdialog.db.repos.tasks import SqlTaskStore
from voxdialog.db.rotate import rotate_content
from voxdialog.db.sealing import SealedDataError
from voxdialog.security.crypto import FieldCipher, generate_key, parse_keyring
from voxdialog.testing.databases import Backend

CANARY = "Zanzibar quokka marmalade"
KEY_ONE = f"k1:{generate_key()}"


@pytest.fixture
def sealed(db: Database) -> Database:
    db.cipher = FieldCipher(parse_keyring(KEY_ONE))
    return db


async def _stored_titles(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        return [row[0] for row in await conn.execute(text("SELECT title FROM tasks"))]


def _files_holding(folder: Path, needle: str) -> list[str]:
    return [
        p.name
        for p in folder.iterdir()
        if p.is_file() and needle.lower().encode() in p.read_bytes().lower()
    ]


async def test_task_titles_are_sealed_at_rest_and_read_in_clear(
    sealed: Database, make_scope: MakeScope, backend: Backend, db_path: Path
) -> None:
    scope = await make_scope()
    store = SqlTaskStore(sealed)
    added = await store.add_task(scope, NewTask(title=f"Buy {CANARY} one"))
    renamed = await store.rename_task(scope, added.id, f"Buy {CANARY} two")
    changed = await update_task(sealed, scope, added.id, TaskChanges(title=f"{CANARY} three"))
    other = await store.add_task(scope, NewTask(title=f"Call {CANARY} four"))
    assert added.title == f"Buy {CANARY} one"
    assert renamed is not None
    assert renamed.title == f"Buy {CANARY} two"
    assert changed is not None
    assert changed.title == f"{CANARY} three"
    listed = await store.list_tasks(scope)
    assert sorted(t.title for t in listed) == [f"Call {CANARY} four", f"{CANARY} three"]
    detail = await get_task_detail(sealed, scope, other.id)
    assert detail is not None
    assert detail.title == f"Call {CANARY} four"
    stored = await _stored_titles(sealed)
    assert all(t.startswith("enc:v1:k1:") for t in stored)
    assert not any("zanzibar" in t.casefold() for t in stored)
    if backend == "sqlite":
        assert f"{db_path.name}-wal" in {p.name for p in db_path.parent.iterdir()}
        assert _files_holding(db_path.parent, "zanzibar") == []  # the file and its -wal


async def test_a_title_moved_to_another_row_fails_instead_of_showing(
    sealed: Database, make_scope: MakeScope
) -> None:
    scope = await make_scope()
    store = SqlTaskStore(sealed)
    first = await store.add_task(scope, NewTask(title="secret one"))
    second = await store.add_task(scope, NewTask(title="secret two"))
    async with sealed.engine.begin() as conn:
        await conn.execute(
            text("UPDATE tasks SET title = (SELECT title FROM tasks WHERE id = :a) WHERE id = :b"),
            {"a": first.id, "b": second.id},
        )
    with pytest.raises(SealedDataError):
        await store.get_task(scope, second.id)


async def test_rotation_seals_plain_titles_and_reseals_with_the_new_key(
    db: Database, make_scope: MakeScope
) -> None:
    scope = await make_scope()
    store = SqlTaskStore(db)
    plain = await store.add_task(scope, NewTask(title="written before a key was set"))
    db.cipher = FieldCipher(parse_keyring(KEY_ONE))
    sealed_one = await store.add_task(scope, NewTask(title="written with key one"))
    db.cipher = FieldCipher(parse_keyring(f"k2:{generate_key()},{KEY_ONE}"))
    report = await rotate_content(db)
    assert report.tasks == 2
    assert all(t.startswith("enc:v1:k2:") for t in await _stored_titles(db))
    titles = {t.id: t.title for t in await store.list_tasks(scope)}
    assert titles == {
        plain.id: "written before a key was set",
        sealed_one.id: "written with key one",
    }
