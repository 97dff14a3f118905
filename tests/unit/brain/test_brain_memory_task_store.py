import datetime as dt

import pytest

from voxdialog.brain.tasks import NewTask, Priority, TaskStore
from voxdialog.security.principal import Scope
from voxdialog.testing.tasks import MemoryTaskStore, TaskStoreFailure

ANN = Scope("acme", "ann")
BOB = Scope("acme", "bob")
OTHER_TENANT_ANN = Scope("globex", "ann")


async def test_tasks_round_trip_with_all_fields():
    store: TaskStore = MemoryTaskStore()
    project = await store.create_project(ANN, "Garden")
    task = await store.add_task(
        ANN,
        NewTask(
            title="Prune the roses",
            due_date=dt.date(2025, 6, 13),
            due_time=dt.time(17, 0),
            priority=Priority.HIGH,
            project_id=project.id,
        ),
    )
    assert task.project_name == "Garden"
    assert await store.list_tasks(ANN) == [task]
    assert await store.list_tasks(ANN, project_id=project.id) == [task]
    assert await store.list_tasks(ANN, due_date=dt.date(2025, 6, 13)) == [task]
    assert await store.list_tasks(ANN, due_date=dt.date(2025, 6, 14)) == []


async def test_open_tasks_come_first_then_creation_order():
    store = MemoryTaskStore()
    first = await store.add_task(ANN, NewTask(title="one"))
    second = await store.add_task(ANN, NewTask(title="two"))
    third = await store.add_task(ANN, NewTask(title="three"))
    done = await store.complete_task(ANN, first.id)
    assert done is not None
    assert done.done
    assert await store.list_tasks(ANN) == [second, third]
    assert [t.title for t in await store.list_tasks(ANN, include_done=True)] == [
        "two",
        "three",
        "one",
    ]


async def test_rename_and_delete():
    store = MemoryTaskStore()
    task = await store.add_task(ANN, NewTask(title="Buy milk"))
    renamed = await store.rename_task(ANN, task.id, "Buy oat milk")
    assert renamed is not None
    assert renamed.title == "Buy oat milk"
    assert await store.delete_task(ANN, task.id) is True
    assert await store.delete_task(ANN, task.id) is False
    assert await store.complete_task(ANN, task.id) is None
    assert await store.rename_task(ANN, task.id, "x") is None


@pytest.mark.parametrize("other", [BOB, OTHER_TENANT_ANN])
async def test_scopes_never_see_each_others_data(other):
    store = MemoryTaskStore()
    task = await store.add_task(ANN, NewTask(title="Buy milk"))
    project = await store.create_project(ANN, "Garden")
    assert await store.list_tasks(other, include_done=True) == []
    assert await store.list_projects(other) == []
    assert await store.complete_task(other, task.id) is None
    assert await store.delete_task(other, task.id) is False
    assert await store.rename_task(other, task.id, "stolen") is None
    with pytest.raises(KeyError):
        await store.add_task(other, NewTask(title="x", project_id=project.id))
    assert [t.title for t in await store.list_tasks(ANN)] == ["Buy milk"]


async def test_create_project_returns_the_existing_one_case_insensitively():
    store = MemoryTaskStore()
    garden = await store.create_project(ANN, "Garden")
    assert await store.create_project(ANN, "garden") == garden
    assert await store.create_project(BOB, "garden") != garden
    assert await store.list_projects(ANN) == [garden]


async def test_fail_next_fails_that_many_calls_then_recovers():
    store = MemoryTaskStore()
    store.fail_next(2)
    for _ in range(2):
        with pytest.raises(TaskStoreFailure):
            await store.list_tasks(ANN)
    assert await store.list_tasks(ANN) == []
