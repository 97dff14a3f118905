"""``/api/tasks`` and ``/api/projects``: the caller's own to-do list, as the assistant keeps it.

Tasks and projects are personal: another user's (in any tenant) do not exist for the caller
(404). A task added by voice is the same row a task added here is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Response

from voxdialog.api.app_schemas import (
    Limit,
    ObjectId,
    Offset,
    ProjectIn,
    ProjectOut,
    ProjectPatch,
    TaskIn,
    TaskOut,
    TaskPatch,
    plausible_id,
)
from voxdialog.api.deps import PrincipalDep, RuntimeDep
from voxdialog.api.errors import ApiError
from voxdialog.api.schemas import Page, page_of
from voxdialog.brain.tasks import NewTask
from voxdialog.db.engine import Database
from voxdialog.db.errors import UnknownProjectError
from voxdialog.db.repos.task_queries import (
    ProjectDetail,
    ProjectNameTakenError,
    TaskDetail,
    add_project,
    get_project_detail,
    get_task_detail,
    list_project_details,
    list_task_details,
    rename_project,
    update_task,
)
from voxdialog.runtime import Runtime
from voxdialog.security.principal import Principal, Scope

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request"},
    401: {"description": "Not signed in"},
    404: {"description": "Not found"},
    429: {"description": "Too many requests"},
}
_NAME_TAKEN: dict[int | str, dict[str, Any]] = {409: {"description": "Project name taken"}}
router = APIRouter(prefix="/api", responses=ERRORS)

_T = TypeVar("_T")


def _task_not_found() -> ApiError:
    return ApiError(404, "Task not found.", code="not_found")


def _project_not_found() -> ApiError:
    return ApiError(404, "Project not found.", code="not_found")


def _unknown_project() -> ApiError:
    return ApiError(
        400,
        "Invalid value for 'project_id': no such project.",
        code="invalid_value",
        param="project_id",
    )


def _name_taken() -> ApiError:
    return ApiError(409, "You already have a project of that name.", code="conflict", param="name")


async def _owned(
    find: Callable[[Database, Scope, str], Awaitable[_T | None]],
    runtime: Runtime,
    principal: Principal,
    object_id: str,
    not_found: Callable[[], ApiError],
) -> _T:
    """The caller's object ``object_id`` as ``find`` reads it, or ``not_found()`` raised.

    An id that cannot be one is never looked up: it is simply not found.
    """
    found = await find(runtime.db, principal.scope, object_id) if plausible_id(object_id) else None
    if found is None:
        raise not_found()
    return found


async def _task(runtime: Runtime, principal: Principal, task_id: str) -> TaskDetail:
    return await _owned(get_task_detail, runtime, principal, task_id, _task_not_found)


async def _project(runtime: Runtime, principal: Principal, project_id: str) -> ProjectDetail:
    return await _owned(get_project_detail, runtime, principal, project_id, _project_not_found)


@router.get("/tasks", tags=["tasks"])
async def tasks(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    done: Annotated[bool | None, Query(description="Only done (true) or open (false).")] = None,
    project_id: Annotated[ObjectId | None, Query(description="Only this project's.")] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[TaskOut]:
    """The caller's tasks: open ones first, then in the order they were added."""
    found = await list_task_details(
        runtime.db,
        principal.scope,
        limit=limit + 1,
        offset=offset,
        done=done,
        project_id=project_id,
    )
    return page_of(found, limit, TaskOut.of)


@router.post("/tasks", status_code=201, tags=["tasks"])
async def new_task(body: TaskIn, principal: PrincipalDep, runtime: RuntimeDep) -> TaskOut:
    """Add a task (the same kind of task the assistant adds by voice)."""
    fields = NewTask(
        title=body.title,
        due_date=body.due_date,
        due_time=body.due_time,
        priority=body.priority,
        project_id=body.project_id,
    )
    try:
        added = await runtime.tasks.add_task(principal.scope, fields)
    except UnknownProjectError as exc:
        raise _unknown_project() from exc
    return TaskOut.of(await _task(runtime, principal, added.id))


@router.get("/tasks/{task_id}", tags=["tasks"])
async def read_task(task_id: str, principal: PrincipalDep, runtime: RuntimeDep) -> TaskOut:
    """One of the caller's tasks."""
    return TaskOut.of(await _task(runtime, principal, task_id))


@router.patch("/tasks/{task_id}", tags=["tasks"])
async def patch_task(
    task_id: str, body: TaskPatch, principal: PrincipalDep, runtime: RuntimeDep
) -> TaskOut:
    """Change the fields sent; ``null`` clears an optional one, ``done`` sets completed_at."""
    if not plausible_id(task_id):
        raise _task_not_found()
    try:
        changed = await update_task(runtime.db, principal.scope, task_id, body.changes())
    except UnknownProjectError as exc:
        raise _unknown_project() from exc
    if changed is None:
        raise _task_not_found()
    return TaskOut.of(changed)


@router.delete("/tasks/{task_id}", status_code=204, tags=["tasks"])
async def remove_task(task_id: str, principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    """Delete one of the caller's tasks."""
    if not plausible_id(task_id) or not await runtime.tasks.delete_task(principal.scope, task_id):
        raise _task_not_found()
    return Response(status_code=204)


@router.get("/projects", tags=["projects"])
async def projects(
    principal: PrincipalDep, runtime: RuntimeDep, limit: Limit = 20, offset: Offset = 0
) -> Page[ProjectOut]:
    """The caller's projects by name, with their task counts."""
    found = await list_project_details(runtime.db, principal.scope, limit=limit + 1, offset=offset)
    return page_of(found, limit, ProjectOut.of)


@router.post("/projects", status_code=201, tags=["projects"], responses=_NAME_TAKEN)
async def new_project(body: ProjectIn, principal: PrincipalDep, runtime: RuntimeDep) -> ProjectOut:
    """Create a project; its name must differ (ignoring case) from the caller's others."""
    try:
        project = await add_project(runtime.db, principal.scope, body.name)
    except ProjectNameTakenError as exc:
        raise _name_taken() from exc
    return ProjectOut.of(project)


@router.get("/projects/{project_id}", tags=["projects"])
async def read_project(project_id: str, principal: PrincipalDep, runtime: RuntimeDep) -> ProjectOut:
    """One of the caller's projects, with how many of its tasks are open."""
    return ProjectOut.of(await _project(runtime, principal, project_id))


@router.patch("/projects/{project_id}", tags=["projects"], responses=_NAME_TAKEN)
async def patch_project(
    project_id: str, body: ProjectPatch, principal: PrincipalDep, runtime: RuntimeDep
) -> ProjectOut:
    """Rename a project (changing only the case of its name is allowed)."""
    if body.name is None:  # nothing sent: nothing changes
        return ProjectOut.of(await _project(runtime, principal, project_id))
    if not plausible_id(project_id):
        raise _project_not_found()
    try:
        renamed = await rename_project(runtime.db, principal.scope, project_id, body.name)
    except ProjectNameTakenError as exc:
        raise _name_taken() from exc
    if renamed is None:
        raise _project_not_found()
    return ProjectOut.of(renamed)


@router.delete("/projects/{project_id}", status_code=204, tags=["projects"])
async def remove_project(project_id: str, principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    """Delete a project; its tasks stay, without a project."""
    if not plausible_id(project_id) or not await runtime.tasks.delete_project(
        principal.scope, project_id
    ):
        raise _project_not_found()
    return Response(status_code=204)
