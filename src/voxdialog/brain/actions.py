"""TaskActions: carry out a parsed command on the task store and phrase the result."""

from __future__ import annotations

import datetime as dt

from voxdialog.brain import replies
from voxdialog.brain.conversation import ConversationState, PendingAction, Reply
from voxdialog.brain.entities import TaskRef
from voxdialog.brain.intents import Command, Intent
from voxdialog.brain.matching import title_score
from voxdialog.brain.references import Resolved, TaskFinder, query_of
from voxdialog.brain.tasks import NewTask, ProjectRecord, TaskStore
from voxdialog.security.principal import Scope

_PROJECT_MATCH = 85.0  # a heard project name this close to an existing one is that project
_GUESS_BELOW = 0.6  # an add_task parsed with less confidence is asked about first


class TaskActions:
    """The task assistant's actions for one scope; every change goes through the store.

    Args:
        store: Where tasks live; its methods commit before returning.
        scope: Whose tasks these are.
        state: The conversation's memory (last list read, pending question), updated here.
    """

    def __init__(self, store: TaskStore, scope: Scope, state: ConversationState) -> None:
        self._store = store
        self._scope = scope
        self._state = state
        self._finder = TaskFinder(store, scope, state)

    async def add(self, command: Command, *, today: dt.date) -> Reply:
        """Add a task, or ask for its title, or ask first when the parse was a guess."""
        if not command.title:
            self._state.awaiting_title = command
            return Reply(
                Intent.ADD_TASK,
                ["Sure.", "What's the task?"],
                False,
                command.confidence,
                {"awaiting": "title"},
            )
        if command.confidence < _GUESS_BELOW:
            self._state.pending = PendingAction(Intent.ADD_TASK, command=command)
            due = replies.say_due(command.due.date, command.due.time, today=today)
            question = f"Should I add {replies.quote(command.title)}" + (
                f" for {due}?" if due else "?"
            )
            return Reply(
                Intent.ADD_TASK,
                [question],
                False,
                command.confidence,
                {"title": command.title, "awaiting_confirmation": True},
            )
        return await self.add_now(command, today=today)

    async def add_now(self, command: Command, *, today: dt.date) -> Reply:
        """Add the task of ``command`` without asking."""
        project: ProjectRecord | None = None
        created = False
        if command.project:
            project, created = await self._project(command.project, create=True)
        new = NewTask(
            title=command.title,
            due_date=command.due.date,
            due_time=command.due.time,
            priority=command.priority,
            project_id=project.id if project else None,
        )
        task = await self._store.add_task(self._scope, new)
        self._state.last_task = task
        sentences = ["Done.", replies.added(task, today=today)]
        if created and project is not None:
            sentences.append(f"I also created the project “{project.name}”.")
        entities: dict[str, object] = {
            "title": task.title,
            "task_id": task.id,
            "due_date": task.due_date.isoformat() if task.due_date else None,
            "due_time": task.due_time.strftime("%H:%M") if task.due_time else None,
            "priority": task.priority.value if task.priority else None,
            "project": project.name if project else None,
        }
        return Reply(Intent.ADD_TASK, sentences, True, command.confidence, entities)

    async def list_or_count(self, command: Command, *, today: dt.date) -> Reply:
        """Read out (list_tasks) or count (count_tasks) open tasks, by period or project."""
        intent = command.intent
        entities: dict[str, object] = {
            "day": command.period.label if command.period else None,
            "project": command.project,
        }
        project: ProjectRecord | None = None
        if command.project:
            project, _ = await self._project(command.project, create=False)
            if project is None:
                return await self._no_such_project(command, entities)
            entities["project"] = project.name
        period = command.period
        single_day = period.start if period is not None and period.start == period.end else None
        tasks = await self._store.list_tasks(
            self._scope, project_id=project.id if project else None, due_date=single_day
        )
        if period is not None:
            tasks = [t for t in tasks if period.contains(t.due_date)]
        entities["count"] = len(tasks)
        where = f" in your {project.name} project" if project else ""
        when = f" {replies.say_period(period, today=today)}" if period else ""
        if intent is Intent.COUNT_TASKS:
            noun = "open task" if not (where or when) else "task"
            sentence = f"You have {replies.count_phrase(len(tasks), noun)}{where}{when}."
            return Reply(intent, [sentence], True, command.confidence, entities)
        self._state.last_list = tuple(tasks)
        if not tasks:
            empty = "Your task list is empty." if not (where or when) else None
            sentence = empty or f"You have no tasks{where}{when}."
            return Reply(intent, [sentence], True, command.confidence, entities)
        opening = f"You have {replies.count_phrase(len(tasks))}{where}{when}."
        return Reply(
            intent,
            [opening, *replies.read_list(tasks, today=today)],
            True,
            command.confidence,
            entities,
        )

    async def complete_or_delete(self, command: Command) -> Reply:
        """Complete or delete the referenced task, or ask which one was meant."""
        target = command.target or TaskRef()
        resolved = await self._finder.resolve(
            target, command, include_done=command.intent is Intent.DELETE_TASK
        )
        if resolved.reply is not None:
            return resolved.reply
        assert resolved.task is not None
        confidence = command.confidence * (resolved.score / 100.0)
        if resolved.ask:
            self._state.pending = PendingAction(command.intent, task=resolved.task)
            return self._question(command.intent, resolved, confidence, target)
        return await self.perform(
            PendingAction(command.intent, task=resolved.task),
            confidence=confidence,
            query=query_of(target),
            ordinal=target.ordinal,
        )

    async def rename(self, command: Command) -> Reply:
        """Rename the referenced task; of the ways to split "X to Y", the best-matching X wins."""
        if not command.renames:
            return Reply(
                Intent.RENAME_TASK,
                ["What should the new name be?", "You can say: rename buy milk to buy oat milk."],
                False,
                command.confidence,
            )
        best: tuple[Resolved, str, TaskRef] | None = None
        for option in command.renames:
            resolved = await self._finder.resolve(option.target, command, include_done=True)
            if best is None or (
                resolved.task is not None
                and (best[0].task is None or resolved.score > best[0].score)
            ):
                best = (resolved, option.new_title, option.target)
        assert best is not None
        resolved, new_title, target = best
        if resolved.reply is not None:
            return resolved.reply
        assert resolved.task is not None
        confidence = command.confidence * (resolved.score / 100.0)
        if resolved.ask:
            self._state.pending = PendingAction(Intent.RENAME_TASK, resolved.task, new_title)
            return self._question(Intent.RENAME_TASK, resolved, confidence, target, new_title)
        return await self.perform(
            PendingAction(Intent.RENAME_TASK, resolved.task, new_title),
            confidence=confidence,
            query=query_of(target),
            ordinal=target.ordinal,
        )

    async def perform(
        self,
        action: PendingAction,
        *,
        confidence: float,
        query: str | None = None,
        ordinal: int | None = None,
    ) -> Reply:
        """Do a complete, delete or rename now; the store confirms before "Done." is said."""
        task = action.task
        assert task is not None
        entities: dict[str, object] = {"title": task.title, "task_id": task.id}
        if query is not None:
            entities["query"] = query
        if ordinal is not None:
            entities["ordinal"] = ordinal
        if action.intent is Intent.COMPLETE_TASK:
            done = await self._store.complete_task(self._scope, task.id)
            sentence = f"I marked {replies.quote(task.title)} as complete."
            self._state.last_task = done
        elif action.intent is Intent.DELETE_TASK:
            done = task if await self._store.delete_task(self._scope, task.id) else None
            sentence = f"I deleted {replies.quote(task.title)}."
            self._state.last_task = None
        else:
            done = await self._store.rename_task(self._scope, task.id, action.new_title)
            sentence = (
                f"I renamed {replies.quote(task.title)} to {replies.quote(action.new_title)}."
            )
            entities["new_title"] = action.new_title
            self._state.last_task = done
        if done is None:
            return Reply(
                action.intent,
                ["Sorry, that task is gone."],
                False,
                confidence,
                entities,
                "task not found",
            )
        return Reply(action.intent, ["Done.", sentence], True, confidence, entities)

    async def create_project(self, command: Command) -> Reply:
        """Create a project (or say it exists)."""
        if not command.title:
            return Reply(
                Intent.CREATE_PROJECT,
                ["What should the project be called?"],
                False,
                command.confidence,
            )
        existing = await self._store.list_projects(self._scope)
        same = next((p for p in existing if p.name.casefold() == command.title.casefold()), None)
        if same is not None:
            return Reply(
                Intent.CREATE_PROJECT,
                [f"You already have a project called “{same.name}”."],
                True,
                command.confidence,
                {"name": same.name, "project_id": same.id},
            )
        project = await self._store.create_project(self._scope, command.title)
        return Reply(
            Intent.CREATE_PROJECT,
            ["Done.", f"I created the project “{project.name}”."],
            True,
            command.confidence,
            {"name": project.name, "project_id": project.id},
        )

    async def _project(self, name: str, *, create: bool) -> tuple[ProjectRecord | None, bool]:
        projects = await self._store.list_projects(self._scope)
        scored = sorted(((title_score(name, p.name), p) for p in projects), key=lambda sp: -sp[0])
        if scored and scored[0][0] >= _PROJECT_MATCH:
            return scored[0][1], False
        if not create:
            return None, False
        return await self._store.create_project(self._scope, name), True

    async def _no_such_project(self, command: Command, entities: dict[str, object]) -> Reply:
        projects = await self._store.list_projects(self._scope)
        sentences = [f"You don't have a project called “{command.project}”."]
        if projects:
            names = [f"“{p.name}”" for p in projects[:5]]
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
            sentences.append(
                f"Your projects are {listed}." if len(names) > 1 else f"Your project is {listed}."
            )
        return Reply(command.intent, sentences, False, command.confidence, entities)

    def _question(
        self,
        intent: Intent,
        resolved: Resolved,
        confidence: float,
        target: TaskRef,
        new_title: str = "",
    ) -> Reply:
        assert resolved.task is not None
        entities: dict[str, object] = {
            "query": query_of(target),
            "title": resolved.task.title,
            "task_id": resolved.task.id,
            "awaiting_confirmation": True,
        }
        if new_title:
            entities["new_title"] = new_title
        return Reply(
            intent,
            [f"Did you mean {replies.quote(resolved.task.title)}?"],
            False,
            confidence,
            entities,
        )
