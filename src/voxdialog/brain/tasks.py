"""The task domain as the assistant sees it, and the store Protocol the database implements."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Protocol

from voxdialog.security.principal import Scope


class Priority(enum.StrEnum):
    """Task priority."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task as stored."""

    id: str
    title: str
    done: bool = False
    due_date: dt.date | None = None
    due_time: dt.time | None = None
    priority: Priority | None = None
    project_id: str | None = None
    project_name: str | None = None


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    """A project (a named list of tasks)."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class NewTask:
    """The fields of a task to create."""

    title: str
    due_date: dt.date | None = None
    due_time: dt.time | None = None
    priority: Priority | None = None
    project_id: str | None = None


class TaskStore(Protocol):
    """Tasks and projects of one scope. Every method is filtered by ``scope``.

    Methods that change data commit before they return, so a spoken confirmation is only
    ever given for work that is stored.
    """

    async def add_task(self, scope: Scope, task: NewTask) -> TaskRecord:
        """Create a task."""
        ...

    async def list_tasks(
        self,
        scope: Scope,
        *,
        include_done: bool = False,
        project_id: str | None = None,
        due_date: dt.date | None = None,
    ) -> list[TaskRecord]:
        """Tasks, open ones first then by creation order."""
        ...

    async def complete_task(self, scope: Scope, task_id: str) -> TaskRecord | None:
        """Mark done; None if the task is not in scope."""
        ...

    async def delete_task(self, scope: Scope, task_id: str) -> bool:
        """Delete; False if the task is not in scope."""
        ...

    async def rename_task(self, scope: Scope, task_id: str, title: str) -> TaskRecord | None:
        """Change the title; None if the task is not in scope."""
        ...

    async def create_project(self, scope: Scope, name: str) -> ProjectRecord:
        """Create a project (returns the existing one if the name is taken, case-insensitively)."""
        ...

    async def list_projects(self, scope: Scope) -> list[ProjectRecord]:
        """All projects of the scope."""
        ...
