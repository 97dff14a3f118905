"""SqlTaskStore: the TaskStore contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from voxdialog.brain.tasks import NewTask, Priority, TaskStore
from voxdialog.db.engine import Database
from voxdialog.db.errors import UnknownProjectError
from voxdialog.db.repos.tasks import SqlTaskStore
from voxdialog.security.principal import Scope
from voxdialog.testing.databases import Backend

MakeScope = Callable[..., Awaitable[Scope]]


@pytest.fixture
def store(db: Database) -> SqlTaskStore:
    return SqlTaskStore(db)


@pytest.fixture
async def scope(make_scope: MakeScope) -> Scope:
    return await make_scope()


def test_sql_task_store_satisfies_the_task_store_protocol(store: SqlTaskStore) -> None:
    typed: TaskStore = store
    assert typed is store


async def test_added_task_is_listed_with_every_field(store: SqlTaskStore, scope: Scope) -> None:
    project = await store.create_project(scope, "Garden")
    added = await store.add_task(
        scope,
        NewTask(
            title="  Water the roses ",
            due_date=dt.date(2031, 5, 17),
            due_time=dt.time(18, 30),
            priority=Priority.HIGH,
            project_id=project.id,
        ),
    )
    assert added.title == "Water the roses"
    assert (added.due_date, added.due_time, added.priority) == (
        dt.date(2031, 5, 17),
        dt.time(18, 30),
        Priority.HIGH,
    )
    assert (added.project_id, added.project_name, added.done) == (project.id, "Garden", False)
    assert await store.list_tasks(scope) == [added]
    assert await store.get_task(scope, added.id) == added


async def test_list_puts_open_tasks_first_then_creation_order(
    store: SqlTaskStore, scope: Scope
) -> None:
    first = await store.add_task(scope, NewTask(title="first"))
    second = await store.add_task(scope, NewTask(title="second"))
    third = await store.add_task(scope, NewTask(title="third"))
    await store.complete_task(scope, first.id)

    everything = await store.list_tasks(scope, include_done=True)
    assert [t.id for t in everything] == [second.id, third.id, first.id]
    assert [t.id for t in await store.list_tasks(scope)] == [second.id, third.id]


async def test_list_filters_by_project_and_due_date(store: SqlTaskStore, scope: Scope) -> None:
    work = await store.create_project(scope, "Work")
    report = await store.add_task(
        scope, NewTask(title="report", project_id=work.id, due_date=dt.date(2030, 1, 2))
    )
    await store.add_task(scope, NewTask(title="call mum", due_date=dt.date(2030, 1, 2)))
    await store.add_task(scope, NewTask(title="slides", project_id=work.id))

    assert [t.title for t in await store.list_tasks(scope, project_id=work.id)] == [
        "report",
        "slides",
    ]
    on_day = await store.list_tasks(scope, due_date=dt.date(2030, 1, 2))
    assert [t.title for t in on_day] == ["report", "call mum"]
    both = await store.list_tasks(scope, project_id=work.id, due_date=dt.date(2030, 1, 2))
    assert both == [report]


async def test_complete_marks_done_and_keeps_the_first_completion(
    store: SqlTaskStore, scope: Scope
) -> None:
    task = await store.add_task(scope, NewTask(title="pay rent"))
    done = await store.complete_task(scope, task.id)
    assert done is not None
    assert done.done
    again = await store.complete_task(scope, task.id)
    assert again == done
    assert await store.list_tasks(scope) == []
    assert await store.complete_task(scope, "no-such-task") is None


async def test_delete_removes_the_task_once(store: SqlTaskStore, scope: Scope) -> None:
    task = await store.add_task(scope, NewTask(title="throw away"))
    assert await store.delete_task(scope, task.id)
    assert not await store.delete_task(scope, task.id)
    assert await store.get_task(scope, task.id) is None


async def test_rename_changes_only_the_title(store: SqlTaskStore, scope: Scope) -> None:
    task = await store.add_task(scope, NewTask(title="old", priority=Priority.LOW))
    renamed = await store.rename_task(scope, task.id, "new")
    assert renamed is not None
    assert renamed.title == "new"
    assert renamed.priority is Priority.LOW
    assert await store.get_task(scope, task.id) == renamed
    assert await store.rename_task(scope, "no-such-task", "x") is None


async def test_blank_titles_and_names_are_refused(store: SqlTaskStore, scope: Scope) -> None:
    task = await store.add_task(scope, NewTask(title="kept"))
    with pytest.raises(ValueError, match="title"):
        await store.add_task(scope, NewTask(title="   "))
    with pytest.raises(ValueError, match="title"):
        await store.rename_task(scope, task.id, "")
    with pytest.raises(ValueError, match="project name"):
        await store.create_project(scope, " ")
    with pytest.raises(ValueError, match="at most 200"):
        await store.create_project(scope, "x" * 201)
    assert await store.list_projects(scope) == []
    assert [t.title for t in await store.list_tasks(scope)] == ["kept"]


async def test_create_project_is_idempotent_ignoring_case(
    store: SqlTaskStore, scope: Scope
) -> None:
    created = await store.create_project(scope, "Home Renovation")
    assert await store.create_project(scope, "home renovation") == created
    assert await store.create_project(scope, " HOME RENOVATION ") == created
    other = await store.create_project(scope, "Holidays")
    assert await store.list_projects(scope) == [other, created]


async def test_concurrent_creates_of_one_project_yield_a_single_project(
    store: SqlTaskStore, scope: Scope
) -> None:
    made = await asyncio.gather(*(store.create_project(scope, "Chores") for _ in range(8)))
    assert len({p.id for p in made}) == 1
    assert await store.list_projects(scope) == [made[0]]


async def test_deleting_a_project_keeps_its_tasks_without_a_project(
    store: SqlTaskStore, scope: Scope
) -> None:
    project = await store.create_project(scope, "Gone")
    task = await store.add_task(scope, NewTask(title="orphan", project_id=project.id))
    assert await store.delete_project(scope, project.id)
    assert not await store.delete_project(scope, project.id)
    kept = await store.get_task(scope, task.id)
    assert kept is not None
    assert (kept.project_id, kept.project_name) == (None, None)
    assert await store.list_projects(scope) == []


async def test_adding_a_task_to_an_unknown_project_is_refused(
    store: SqlTaskStore, scope: Scope
) -> None:
    with pytest.raises(UnknownProjectError) as raised:
        await store.add_task(scope, NewTask(title="lost", project_id="nope"))
    assert isinstance(raised.value, KeyError)
    assert not raised.value.retryable
    assert await store.list_tasks(scope) == []


async def test_projects_are_listed_in_code_point_order_whatever_the_collation(
    backend: Backend, private_db: Database, make_scope: MakeScope
) -> None:
    if backend == "postgresql":
        # Servers often default to a linguistic collation, which puts "é" before "f".
        async with private_db.engine.begin() as conn:
            await conn.execute(
                text(
                    "ALTER TABLE projects ALTER COLUMN name_key"
                    ' TYPE VARCHAR(200) COLLATE "en-x-icu"'
                )
            )
    store = SqlTaskStore(private_db)
    scope = await make_scope(database=private_db)
    names = ["Été", "fall", "Zoo", "apple"]
    for name in names:
        await store.create_project(scope, name)

    listed = [p.name for p in await store.list_projects(scope)]
    assert listed == sorted(names, key=str.casefold) == ["apple", "fall", "Zoo", "Été"]


async def test_a_project_name_too_long_once_case_folded_is_refused(
    store: SqlTaskStore, scope: Scope
) -> None:
    # "ß" folds to "ss": 150 characters become 300, more than the stored key can hold.
    with pytest.raises(ValueError, match="at most 200"):
        await store.create_project(scope, "ß" * 150)
    assert await store.list_projects(scope) == []
    fitting = await store.create_project(scope, "ß" * 100)
    assert await store.list_projects(scope) == [fitting]


async def test_nul_characters_are_left_out_of_titles_and_names(
    store: SqlTaskStore, scope: Scope
) -> None:
    project = await store.create_project(scope, "Gar\x00den")
    task = await store.add_task(scope, NewTask(title="buy\x00 milk", project_id=project.id))
    assert (project.name, task.title) == ("Garden", "buy milk")
    with pytest.raises(ValueError, match="title"):
        await store.add_task(scope, NewTask(title="\x00 "))
    assert await store.list_tasks(scope) == [task]
