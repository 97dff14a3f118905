"""Scoping: no TaskStore method lets one user see or change another user's tasks or projects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from voxdialog.brain.tasks import NewTask, ProjectRecord, TaskRecord
from voxdialog.db.engine import Database
from voxdialog.db.errors import UnknownProjectError
from voxdialog.db.repos.tasks import SqlTaskStore
from voxdialog.security.principal import Scope

MakeScope = Callable[..., Awaitable[Scope]]


@dataclass(frozen=True, slots=True)
class Victim:
    """The owner's data the intruder aims at."""

    scope: Scope
    task: TaskRecord
    project: ProjectRecord


async def _intrude_get(store: SqlTaskStore, me: Scope, victim: Victim) -> None:
    assert await store.get_task(me, victim.task.id) is None


async def _intrude_list(store: SqlTaskStore, me: Scope, victim: Victim) -> None:
    assert await store.list_tasks(me, include_done=True) == []
    assert await store.list_tasks(me, project_id=victim.project.id) == []
    assert await store.list_tasks(me, due_date=victim.task.due_date) == []


async def _intrude_complete(store: SqlTaskStore, me: Scope, victim: Victim) -> None:
    assert await store.complete_task(me, victim.task.id) is None


async def _intrude_delete(store: SqlTaskStore, me: Scope, victim: Victim) -> None:
    assert not await store.delete_task(me, victim.task.id)


async def _intrude_rename(store: SqlTaskStore, me: Scope, victim: Victim) -> None:
    assert await store.rename_task(me, victim.task.id, "hacked") is None


async def _intrude_add_to_project(store: SqlTaskStore, me: Scope, victim: Victim) -> None:
    with pytest.raises(UnknownProjectError):
        await store.add_task(me, NewTask(title="sneaky", project_id=victim.project.id))


async def _intrude_create_project(store: SqlTaskStore, me: Scope, victim: Victim) -> None:
    mine = await store.create_project(me, victim.project.name.upper())
    assert mine.id != victim.project.id
    assert await store.list_projects(me) == [mine]


async def _intrude_list_projects(store: SqlTaskStore, me: Scope, victim: Victim) -> None:
    assert await store.list_projects(me) == []


async def _intrude_delete_project(store: SqlTaskStore, me: Scope, victim: Victim) -> None:
    assert not await store.delete_project(me, victim.project.id)


INTRUSIONS = {
    "get_task": _intrude_get,
    "list_tasks": _intrude_list,
    "complete_task": _intrude_complete,
    "delete_task": _intrude_delete,
    "rename_task": _intrude_rename,
    "add_task": _intrude_add_to_project,
    "create_project": _intrude_create_project,
    "list_projects": _intrude_list_projects,
    "delete_project": _intrude_delete_project,
}


@pytest.mark.parametrize("neighbour", ["other tenant", "same tenant"])
@pytest.mark.parametrize("method", sorted(INTRUSIONS))
async def test_a_user_cannot_see_or_change_another_users_tasks(
    db: Database, make_scope: MakeScope, neighbour: str, method: str
) -> None:
    store = SqlTaskStore(db)
    owner = await make_scope()
    intruder = (
        await make_scope(tenant_id=owner.tenant_id)
        if neighbour == "same tenant"
        else await make_scope()
    )
    project = await store.create_project(owner, "Secret Plans")
    task = await store.add_task(
        owner,
        NewTask(title="world domination", project_id=project.id, due_date=dt.date(2030, 1, 1)),
    )
    before = (await store.list_tasks(owner, include_done=True), await store.list_projects(owner))

    await INTRUSIONS[method](store, intruder, Victim(owner, task, project))

    after = (await store.list_tasks(owner, include_done=True), await store.list_projects(owner))
    assert after == before
    assert after[0] == [task]
