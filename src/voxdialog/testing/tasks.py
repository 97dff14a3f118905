"""MemoryTaskStore: an in-memory TaskStore for tests and scripted sessions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

from voxdialog.brain.tasks import NewTask, ProjectRecord, TaskRecord
from voxdialog.security.principal import Scope


class TaskStoreFailure(RuntimeError):
    """A simulated store failure (``fail_next``); retrying may help."""

    retryable = True


class MemoryTaskStore:
    """Tasks and projects kept in dictionaries, keyed by scope.

    Implements the ``TaskStore`` Protocol. Every method sees only the scope it is given, so two
    scopes never see each other's data. ``fail_next`` makes the next ``n`` calls raise
    ``TaskStoreFailure``, to exercise error paths.

    Example:
        >>> store = MemoryTaskStore()
        >>> # await store.add_task(scope, NewTask(title="Buy milk"))
    """

    def __init__(self) -> None:
        """Start empty."""
        self._tasks: dict[Scope, dict[str, TaskRecord]] = {}
        self._projects: dict[Scope, dict[str, ProjectRecord]] = {}
        self._ids = itertools.count(1)
        self._failures = 0

    def fail_next(self, n: int = 1, /) -> None:
        """Make the next ``n`` calls raise ``TaskStoreFailure``."""
        self._failures = n

    def _check(self) -> None:
        if self._failures > 0:
            self._failures -= 1
            raise TaskStoreFailure("task store unavailable")

    def _tasks_of(self, scope: Scope) -> dict[str, TaskRecord]:
        return self._tasks.setdefault(scope, {})

    def _projects_of(self, scope: Scope) -> dict[str, ProjectRecord]:
        return self._projects.setdefault(scope, {})

    async def add_task(self, scope: Scope, task: NewTask) -> TaskRecord:
        """Create a task (its project, if any, must belong to ``scope``)."""
        self._check()
        project_name: str | None = None
        if task.project_id is not None:
            project = self._projects_of(scope).get(task.project_id)
            if project is None:
                raise KeyError(f"project {task.project_id} is not in scope")
            project_name = project.name
        record = TaskRecord(
            id=f"t{next(self._ids)}",
            title=task.title,
            due_date=task.due_date,
            due_time=task.due_time,
            priority=task.priority,
            project_id=task.project_id,
            project_name=project_name,
        )
        self._tasks_of(scope)[record.id] = record
        return record

    async def list_tasks(
        self,
        scope: Scope,
        *,
        include_done: bool = False,
        project_id: str | None = None,
        due_date: dt.date | None = None,
    ) -> list[TaskRecord]:
        """Tasks, open ones first then by creation order."""
        self._check()
        found = [
            t
            for t in self._tasks_of(scope).values()
            if (include_done or not t.done)
            and (project_id is None or t.project_id == project_id)
            and (due_date is None or t.due_date == due_date)
        ]
        # Dicts keep insertion order, so a stable sort on ``done`` keeps creation order.
        return sorted(found, key=lambda t: t.done)

    async def complete_task(self, scope: Scope, task_id: str) -> TaskRecord | None:
        """Mark done; None if the task is not in scope."""
        self._check()
        tasks = self._tasks_of(scope)
        if task_id not in tasks:
            return None
        tasks[task_id] = dataclasses.replace(tasks[task_id], done=True)
        return tasks[task_id]

    async def delete_task(self, scope: Scope, task_id: str) -> bool:
        """Delete; False if the task is not in scope."""
        self._check()
        return self._tasks_of(scope).pop(task_id, None) is not None

    async def rename_task(self, scope: Scope, task_id: str, title: str) -> TaskRecord | None:
        """Change the title; None if the task is not in scope."""
        self._check()
        tasks = self._tasks_of(scope)
        if task_id not in tasks:
            return None
        tasks[task_id] = dataclasses.replace(tasks[task_id], title=title)
        return tasks[task_id]

    async def create_project(self, scope: Scope, name: str) -> ProjectRecord:
        """Create a project (returns the existing one if the name is taken, case-insensitively)."""
        self._check()
        projects = self._projects_of(scope)
        for project in projects.values():
            if project.name.casefold() == name.casefold():
                return project
        record = ProjectRecord(id=f"p{next(self._ids)}", name=name)
        projects[record.id] = record
        return record

    async def list_projects(self, scope: Scope) -> list[ProjectRecord]:
        """All projects of the scope."""
        self._check()
        return list(self._projects_of(scope).values())
