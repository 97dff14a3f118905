"""Tasks and projects as the app shows and edits them: full records, pages, counts, changes.

The voice assistant writes the same rows through `voxdialog.db.repos.tasks.SqlTaskStore`;
this module adds what the app needs besides (timestamps, paged and filtered lists, editing
any field, strict project creation and renaming). Every query is filtered by tenant and user.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import asdict, dataclass
from typing import Final

from sqlalchemy import Select, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxdialog.brain.tasks import Priority
from voxdialog.db.engine import Database
from voxdialog.db.errors import StoreError
from voxdialog.db.models import NAME_LENGTH, Project, Task, utcnow
from voxdialog.db.repos.tasks import (
    new_project,
    owned_project,
    owned_task,
    project_key,
    projects_by_name,
    scoped_project_name,
    seal_title,
    task_record,
    tasks_of,
)
from voxdialog.security.principal import Scope


class ProjectNameTakenError(StoreError):
    """Another project of the user has this name (names compare case-insensitively)."""


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET: Final = _Unset.UNSET
"""A field of `TaskChanges` that the caller did not send (``None`` clears a field)."""


@dataclass(frozen=True, slots=True)
class TaskDetail:
    """A task with everything the app shows."""

    id: str
    title: str
    done: bool
    due_date: dt.date | None
    due_time: dt.time | None
    priority: Priority | None
    project_id: str | None
    project_name: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """The fields of a task to change; `UNSET` leaves a field alone, ``None`` clears it."""

    title: str | _Unset = UNSET
    done: bool | _Unset = UNSET
    due_date: dt.date | _Unset | None = UNSET
    due_time: dt.time | _Unset | None = UNSET
    priority: Priority | _Unset | None = UNSET
    project_id: str | _Unset | None = UNSET


@dataclass(frozen=True, slots=True)
class ProjectDetail:
    """A project with its task counts."""

    id: str
    name: str
    created_at: dt.datetime
    task_count: int
    open_task_count: int


def clean_text(text: str) -> str:
    """``text`` as stored: without NUL characters (PostgreSQL refuses them), trimmed."""
    return text.replace("\x00", "").strip()


def _task_detail(db: Database, task: Task, project_name: str | None) -> TaskDetail:
    # The assistant's record of the task, plus the timestamps the app shows.
    return TaskDetail(
        **asdict(task_record(db, task, project_name)),
        created_at=task.created_at,
        updated_at=task.updated_at,
        completed_at=task.completed_at,
    )


async def get_task_detail(db: Database, scope: Scope, task_id: str) -> TaskDetail | None:
    """One of the scope's tasks, or None."""
    async with db.sessions() as session:
        found = (await session.execute(tasks_of(scope).where(Task.id == task_id))).first()
    if found is None:
        return None
    task, project_name = found
    return _task_detail(db, task, project_name)


async def list_task_details(
    db: Database,
    scope: Scope,
    *,
    limit: int,
    offset: int = 0,
    done: bool | None = None,
    project_id: str | None = None,
) -> list[TaskDetail]:
    """A page of the scope's tasks: open ones first, then by creation (the assistant's order).

    Args:
        db: The database.
        scope: Whose tasks.
        limit: At most this many.
        offset: Skip this many first.
        done: Only done (True) or only open (False) tasks; None for both.
        project_id: Only the tasks of this project.
    """
    query = tasks_of(scope)
    if done is not None:
        query = query.where(Task.done.is_(done))
    if project_id is not None:
        query = query.where(Task.project_id == project_id)
    query = query.order_by(Task.done, Task.created_at, Task.id).limit(limit).offset(offset)
    async with db.sessions() as session:
        rows = (await session.execute(query)).all()
    return [_task_detail(db, task, name) for task, name in rows]


def _set_done(task: Task, done: bool, now: dt.datetime) -> None:
    # Completing keeps the first completion time; reopening forgets it.
    if done and not task.done:
        task.completed_at = now
    elif not done:
        task.completed_at = None
    task.done = done


def _apply(db: Database, task: Task, changes: TaskChanges, now: dt.datetime) -> None:
    if not isinstance(changes.title, _Unset):
        cleaned = clean_text(changes.title)
        if not cleaned:
            raise ValueError("task title must not be empty")
        seal_title(db, task, cleaned)
    if not isinstance(changes.done, _Unset):
        _set_done(task, changes.done, now)
    if not isinstance(changes.due_date, _Unset):
        task.due_date = changes.due_date
    if not isinstance(changes.due_time, _Unset):
        task.due_time = changes.due_time
    if not isinstance(changes.priority, _Unset):
        task.priority = changes.priority.value if changes.priority is not None else None
    if not isinstance(changes.project_id, _Unset):
        task.project_id = changes.project_id
    task.updated_at = now


async def update_task(
    db: Database, scope: Scope, task_id: str, changes: TaskChanges
) -> TaskDetail | None:
    """Change the fields of one of the scope's tasks that ``changes`` sets.

    Marking a task done sets its completion time (kept if it was done already); marking it
    not done clears it.

    Returns:
        The changed task, or None if the scope has no such task.

    Raises:
        UnknownProjectError: ``changes.project_id`` is not one of the scope's projects.
        ValueError: The new title is blank.
    """
    async with db.sessions() as session, session.begin():
        task = await session.scalar(owned_task(scope, task_id))
        if task is None:
            return None
        # Checked before the change: a flush of an unknown project id would break the FK.
        project_id = (
            task.project_id if isinstance(changes.project_id, _Unset) else changes.project_id
        )
        project_name = await scoped_project_name(session, scope, project_id)
        _apply(db, task, changes, utcnow())
    return _task_detail(db, task, project_name)


def _counts_of(scope: Scope) -> Select[str | None, int, int]:
    return (
        select(
            Task.project_id,
            func.count(),
            func.coalesce(func.sum(case((Task.done.is_(False), 1), else_=0)), 0),
        )
        .where(
            Task.tenant_id == scope.tenant_id,
            Task.user_id == scope.user_id,
            Task.project_id.is_not(None),
        )
        .group_by(Task.project_id)
    )


async def _project_details(
    session: AsyncSession, scope: Scope, projects: list[Project]
) -> list[ProjectDetail]:
    if not projects:
        return []
    ids = [project.id for project in projects]
    rows = await session.execute(_counts_of(scope).where(Task.project_id.in_(ids)))
    counts = {project_id: (total, open_) for project_id, total, open_ in rows}
    details = []
    for project in projects:
        total, open_ = counts.get(project.id, (0, 0))
        details.append(
            ProjectDetail(
                id=project.id,
                name=project.name,
                created_at=project.created_at,
                task_count=int(total),
                open_task_count=int(open_),
            )
        )
    return details


async def get_project_detail(db: Database, scope: Scope, project_id: str) -> ProjectDetail | None:
    """One of the scope's projects with its task counts, or None."""
    async with db.sessions() as session:
        project = await session.scalar(owned_project(scope, project_id))
        if project is None:
            return None
        (detail,) = await _project_details(session, scope, [project])
    return detail


async def list_project_details(
    db: Database, scope: Scope, *, limit: int, offset: int = 0
) -> list[ProjectDetail]:
    """A page of the scope's projects, by case-folded name, with their task counts."""
    async with db.sessions() as session:
        query = projects_by_name(db, scope).limit(limit).offset(offset)
        projects = list(await session.scalars(query))
        return await _project_details(session, scope, projects)


def _checked_name(name: str) -> tuple[str, str]:
    """The name as stored and its key; ValueError if blank or too long."""
    cleaned = clean_text(name)
    if not cleaned:
        raise ValueError("project name must not be empty")
    key = project_key(cleaned)
    if len(cleaned) > NAME_LENGTH or len(key) > NAME_LENGTH:
        raise ValueError(f"project name must be at most {NAME_LENGTH} characters")
    return cleaned, key


async def _key_taken(
    session: AsyncSession, scope: Scope, key: str, *, besides: str | None = None
) -> bool:
    query = select(Project.id).where(
        Project.tenant_id == scope.tenant_id,
        Project.user_id == scope.user_id,
        Project.name_key == key,
    )
    if besides is not None:
        query = query.where(Project.id != besides)
    return await session.scalar(query) is not None


async def add_project(db: Database, scope: Scope, name: str) -> ProjectDetail:
    """Create a project; unlike the assistant's ``create_project``, a taken name is an error.

    Raises:
        ProjectNameTakenError: The user has a project of that name, ignoring case.
        ValueError: The name is blank or too long.
    """
    cleaned, key = _checked_name(name)
    try:
        async with db.sessions() as session, session.begin():
            if await _key_taken(session, scope, key):
                raise ProjectNameTakenError(f"project name {cleaned!r} is taken")
            project = new_project(scope, cleaned, key)
            session.add(project)
    except IntegrityError as exc:
        # Another connection created the same name between our check and our insert.
        raise ProjectNameTakenError(f"project name {cleaned!r} is taken") from exc
    return ProjectDetail(
        id=project.id,
        name=project.name,
        created_at=project.created_at,
        task_count=0,
        open_task_count=0,
    )


async def rename_project(
    db: Database, scope: Scope, project_id: str, name: str
) -> ProjectDetail | None:
    """Rename one of the scope's projects (a change of case only is allowed).

    Returns:
        The renamed project, or None if the scope has no such project.

    Raises:
        ProjectNameTakenError: Another project of the user has that name, ignoring case.
        ValueError: The name is blank or too long.
    """
    cleaned, key = _checked_name(name)
    try:
        async with db.sessions() as session, session.begin():
            project = await session.scalar(owned_project(scope, project_id))
            if project is None:
                return None
            if await _key_taken(session, scope, key, besides=project.id):
                raise ProjectNameTakenError(f"project name {cleaned!r} is taken")
            project.name = cleaned
            project.name_key = key
            await session.flush()
            (detail,) = await _project_details(session, scope, [project])
    except IntegrityError as exc:
        raise ProjectNameTakenError(f"project name {cleaned!r} is taken") from exc
    return detail
