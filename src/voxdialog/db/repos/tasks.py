"""Tasks and projects in SQL: the `TaskStore` the assistant brain works on."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from voxdialog.brain.tasks import NewTask, Priority, ProjectRecord, TaskRecord
from voxdialog.db.engine import Database
from voxdialog.db.errors import UnknownProjectError
from voxdialog.db.models import NAME_LENGTH, Project, Task, new_id, utcnow
from voxdialog.db.sealing import seal, task_title_context, unseal
from voxdialog.security.principal import Scope


def project_key(name: str) -> str:
    """The case-insensitive identity of a project name."""
    return name.strip().casefold()


def _clean(text: str, *, what: str, max_length: int | None = None) -> str:
    # PostgreSQL text cannot hold NUL; SQLite could, but both must store the same thing.
    cleaned = text.replace("\x00", "").strip()
    if not cleaned:
        raise ValueError(f"{what} must not be empty")
    if max_length is not None and len(cleaned) > max_length:
        raise ValueError(f"{what} must be at most {max_length} characters")
    return cleaned


def seal_title(db: Database, task: Task, title: str) -> None:
    """Store ``title`` on ``task`` (whose id is set), sealed when a key is configured."""
    task.title = seal(db, title, task_title_context(task.id))


def task_record(db: Database, task: Task, project_name: str | None) -> TaskRecord:
    """The assistant's view of a task row (``project_name``: its project's, if it has one).

    Raises:
        SealedDataError: The stored title does not authenticate (tampered, or no key).
    """
    return TaskRecord(
        id=task.id,
        title=unseal(db, task.title, task_title_context(task.id)),
        done=task.done,
        due_date=task.due_date,
        due_time=task.due_time,
        priority=Priority(task.priority) if task.priority is not None else None,
        project_id=task.project_id,
        project_name=project_name,
    )


def _project_record(project: Project) -> ProjectRecord:
    return ProjectRecord(id=project.id, name=project.name)


def tasks_of(scope: Scope) -> Select[Task, str | None]:
    """The scope's tasks, each with its project's name (None for a task without a project)."""
    return (
        select(Task, Project.name)
        .outerjoin(Project, Project.id == Task.project_id)
        .where(Task.tenant_id == scope.tenant_id, Task.user_id == scope.user_id)
    )


def owned_task(scope: Scope, task_id: str) -> Select[Task]:
    """The task ``task_id`` if it is the scope's."""
    return select(Task).where(
        Task.id == task_id,
        Task.tenant_id == scope.tenant_id,
        Task.user_id == scope.user_id,
    )


def owned_project(scope: Scope, project_id: str) -> Select[Project]:
    """The project ``project_id`` if it is the scope's."""
    return select(Project).where(
        Project.id == project_id,
        Project.tenant_id == scope.tenant_id,
        Project.user_id == scope.user_id,
    )


def projects_by_name(db: Database, scope: Scope) -> Select[Project]:
    """The scope's projects by case-folded name, in code point order on every database."""
    name_order: ColumnElement[str] | InstrumentedAttribute[str] = Project.name_key
    if db.engine.dialect.name == "postgresql":
        # The database's collation (often a linguistic one, putting "é" before "f", or ignoring
        # punctuation) would order differently from SQLite's binary comparison; "C" is code
        # point order.
        name_order = Project.name_key.collate("C")
    return (
        select(Project)
        .where(Project.tenant_id == scope.tenant_id, Project.user_id == scope.user_id)
        .order_by(name_order, Project.id)
    )


def new_project(scope: Scope, name: str, key: str) -> Project:
    """A project row for the scope (``key``: the name's `project_key`)."""
    return Project(
        tenant_id=scope.tenant_id,
        user_id=scope.user_id,
        name=name,
        name_key=key,
        created_at=utcnow(),
    )


async def scoped_project_name(
    session: AsyncSession, scope: Scope, project_id: str | None
) -> str | None:
    """The name of the scope's project ``project_id`` (None when ``project_id`` is None).

    Raises:
        UnknownProjectError: ``project_id`` is not one of the scope's projects.
    """
    if project_id is None:
        return None
    name = await session.scalar(
        select(Project.name).where(
            Project.id == project_id,
            Project.tenant_id == scope.tenant_id,
            Project.user_id == scope.user_id,
        )
    )
    if name is None:
        raise UnknownProjectError(f"project {project_id!r} is not in scope")
    return name


class SqlTaskStore:
    """`TaskStore` on the database: every query is filtered by tenant and user.

    Each call opens its own short session, so one store serves any number of concurrent
    conversations.
    """

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every call."""
        self._db = db

    async def add_task(self, scope: Scope, task: NewTask) -> TaskRecord:
        """Create a task.

        Raises:
            ValueError: The title is blank.
            UnknownProjectError: ``task.project_id`` is not one of the scope's projects.
        """
        title = _clean(task.title, what="task title")
        async with self._db.sessions() as session, session.begin():
            name = await scoped_project_name(session, scope, task.project_id)
            now = utcnow()
            row = Task(
                id=new_id(),  # known before the insert: the sealed title is bound to it
                tenant_id=scope.tenant_id,
                user_id=scope.user_id,
                project_id=task.project_id,
                done=False,
                due_date=task.due_date,
                due_time=task.due_time,
                priority=task.priority.value if task.priority is not None else None,
                created_at=now,
                updated_at=now,
            )
            seal_title(self._db, row, title)
            session.add(row)
        return task_record(self._db, row, name)

    async def get_task(self, scope: Scope, task_id: str) -> TaskRecord | None:
        """One task of the scope, or None."""
        async with self._db.sessions() as session:
            found = (await session.execute(tasks_of(scope).where(Task.id == task_id))).first()
        if found is None:
            return None
        task, name = found
        return task_record(self._db, task, name)

    async def list_tasks(
        self,
        scope: Scope,
        *,
        include_done: bool = False,
        project_id: str | None = None,
        due_date: dt.date | None = None,
    ) -> list[TaskRecord]:
        """Tasks, open ones first then by creation order."""
        query = tasks_of(scope)
        if not include_done:
            query = query.where(Task.done.is_(False))
        if project_id is not None:
            query = query.where(Task.project_id == project_id)
        if due_date is not None:
            query = query.where(Task.due_date == due_date)
        query = query.order_by(Task.done, Task.created_at, Task.id)
        async with self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        return [task_record(self._db, task, name) for task, name in rows]

    async def complete_task(self, scope: Scope, task_id: str) -> TaskRecord | None:
        """Mark done (keeping the first completion time); None if the task is not in scope."""
        async with self._db.sessions() as session, session.begin():
            task = await session.scalar(owned_task(scope, task_id))
            if task is None:
                return None
            if not task.done:
                now = utcnow()
                task.done = True
                task.completed_at = now
                task.updated_at = now
            name = await scoped_project_name(session, scope, task.project_id)
        return task_record(self._db, task, name)

    async def delete_task(self, scope: Scope, task_id: str) -> bool:
        """Delete; False if the task is not in scope."""
        async with self._db.sessions() as session, session.begin():
            result = await session.execute(
                delete(Task).where(
                    Task.id == task_id,
                    Task.tenant_id == scope.tenant_id,
                    Task.user_id == scope.user_id,
                )
            )
        return cast(CursorResult[Any], result).rowcount > 0

    async def rename_task(self, scope: Scope, task_id: str, title: str) -> TaskRecord | None:
        """Change the title; None if the task is not in scope.

        Raises:
            ValueError: The title is blank.
        """
        cleaned = _clean(title, what="task title")
        async with self._db.sessions() as session, session.begin():
            task = await session.scalar(owned_task(scope, task_id))
            if task is None:
                return None
            seal_title(self._db, task, cleaned)
            task.updated_at = utcnow()
            name = await scoped_project_name(session, scope, task.project_id)
        return task_record(self._db, task, name)

    async def create_project(self, scope: Scope, name: str) -> ProjectRecord:
        """Create a project (returns the existing one if the name is taken, case-insensitively).

        Raises:
            ValueError: The name is blank or too long.
        """
        cleaned = _clean(name, what="project name", max_length=NAME_LENGTH)
        key = project_key(cleaned)
        if len(key) > NAME_LENGTH:
            # Case folding can lengthen a name ("ß" becomes "ss"): the key must fit its column.
            raise ValueError(f"project name must be at most {NAME_LENGTH} characters once folded")
        try:
            async with self._db.sessions() as session, session.begin():
                existing = await self._project_by_key(session, scope, key)
                if existing is not None:
                    return _project_record(existing)
                project = new_project(scope, cleaned, key)
                session.add(project)
            return _project_record(project)
        except IntegrityError:
            # Another connection created the same name between our read and our insert.
            async with self._db.sessions() as session:
                winner = await self._project_by_key(session, scope, key)
            if winner is None:
                raise
            return _project_record(winner)

    async def _project_by_key(
        self, session: AsyncSession, scope: Scope, key: str
    ) -> Project | None:
        return await session.scalar(
            select(Project).where(
                Project.tenant_id == scope.tenant_id,
                Project.user_id == scope.user_id,
                Project.name_key == key,
            )
        )

    async def list_projects(self, scope: Scope) -> list[ProjectRecord]:
        """All projects of the scope, by case-folded name in code point order."""
        async with self._db.sessions() as session:
            projects = await session.scalars(projects_by_name(self._db, scope))
            return [_project_record(p) for p in projects]

    async def delete_project(self, scope: Scope, project_id: str) -> bool:
        """Delete a project; its tasks stay, without a project. False if not in scope."""
        async with self._db.sessions() as session, session.begin():
            result = await session.execute(
                delete(Project).where(
                    Project.id == project_id,
                    Project.tenant_id == scope.tenant_id,
                    Project.user_id == scope.user_id,
                )
            )
        return cast(CursorResult[Any], result).rowcount > 0
