"""TaskTools: the task and project tools an LLM may call, run server-side on the scoped store.

What the model is offered, and how its arguments are checked, is ``brain/tool_specs.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field

from voxdialog.brain import replies
from voxdialog.brain.matching import ASK_AT, Verdict, match_task, title_score
from voxdialog.brain.tasks import NewTask, Priority, ProjectRecord, TaskRecord, TaskStore
from voxdialog.brain.tool_specs import BadArguments, enabled_specs, parse_arguments
from voxdialog.providers.base import ToolSpec
from voxdialog.security.principal import Scope

log = logging.getLogger(__name__)

LIST_AT_MOST = 30
"""How many tasks a tool result lists (the count is always complete)."""
_PROJECT_MATCH = 85.0  # a project name this close to an existing one is that project


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call did.

    Attributes:
        ok: Whether the call did what was asked.
        content: Compact JSON for the model (the ``tool`` message).
        summary: Entities for the voice-command record (validated arguments and outcome).
        spoken: A plain sentence saying the outcome, for when the model cannot say it.
        error: Why the call failed, when it did.
    """

    ok: bool
    content: str
    summary: Mapping[str, object] = field(default_factory=dict)
    spoken: str = ""
    error: str | None = None


def _json(payload: Mapping[str, object]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _ok(payload: dict[str, object], spoken: str, **summary: object) -> ToolResult:
    return ToolResult(True, _json({"ok": True, **payload}), summary, spoken)


def _fail(error: str, spoken: str, **extra: object) -> ToolResult:
    summary = {k: v for k, v in extra.items() if k != "hint"}
    return ToolResult(False, _json({"ok": False, "error": error, **extra}), summary, spoken, error)


def _text(args: Mapping[str, object], key: str) -> str | None:
    value = args.get(key)
    return value if isinstance(value, str) else None


def _date(args: Mapping[str, object], key: str) -> dt.date | None:
    text = _text(args, key)
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError as e:
        raise BadArguments(f"invalid arguments: '{key}' {text} is not a calendar date") from e


def _time(args: Mapping[str, object], key: str) -> dt.time | None:
    text = _text(args, key)
    if not text:
        return None
    hour, minute, *_ = (int(p) for p in text.split(":"))
    if hour > 23 or minute > 59:
        raise BadArguments(f"invalid arguments: '{key}' {text} is not a time of day")
    return dt.time(hour, minute)


def _brief(task: TaskRecord) -> dict[str, object]:
    """A task as the model sees it; absent fields are left out to save tokens."""
    row: dict[str, object] = {"id": task.id, "title": task.title}
    if task.done:
        row["done"] = True
    if task.due_date:
        row["due_date"] = task.due_date.isoformat()
    if task.due_time:
        row["due_time"] = task.due_time.strftime("%H:%M")
    if task.priority:
        row["priority"] = task.priority.value
    if task.project_name:
        row["project"] = task.project_name
    return row


Handler = Callable[[dict[str, object]], Awaitable[ToolResult]]


class TaskTools:
    """The task tools of one scope: specs for the model, and their server-side execution.

    Args:
        store: Where tasks live; every call is filtered by ``scope``.
        scope: Whose tasks the tools touch.
        clock: The user's local time, for spoken dates (defaults to the system's).
        enabled: The tool names offered and run (an agent's subset); ``None`` means all.
    """

    def __init__(
        self,
        store: TaskStore,
        scope: Scope,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        enabled: Collection[str] | None = None,
    ) -> None:
        self._specs = enabled_specs(enabled)
        self._store = store
        self._scope = scope
        self._clock = clock or (lambda: dt.datetime.now().astimezone())
        self._handlers: dict[str, Handler] = {
            "create_task": self._create_task,
            "list_tasks": self._list_tasks,
            "complete_task": self._complete_task,
            "delete_task": self._delete_task,
            "rename_task": self._rename_task,
            "search_tasks": self._search_tasks,
            "create_project": self._create_project,
            "list_projects": self._list_projects,
        }

    def specs(self) -> tuple[ToolSpec, ...]:
        """The enabled tools, for ``ChatRequest.tools``."""
        return self._specs

    async def call(self, name: str, arguments_json: str) -> ToolResult:
        """Run tool ``name`` with the model's JSON arguments; never raises (but cancellation).

        Bad JSON, missing or malformed fields, an unknown tool and store failures all come
        back as ``ok=False`` with an error the model can act on.
        """
        spec = next((s for s in self._specs if s.name == name), None)
        if spec is None:
            known = ", ".join(s.name for s in self._specs) or "none"
            return _fail(f"unknown tool '{name}'; the tools are {known}", "", tool=name)
        try:
            args = parse_arguments(spec, arguments_json)
        except BadArguments as e:
            return _fail(str(e), "", arguments=arguments_json[:200])
        try:
            result = await self._handlers[name](args)
        except BadArguments as e:
            result = _fail(str(e), "")
        except Exception as e:  # the store failed; CancelledError is no Exception and passes
            log.warning("task tool failed", extra={"tool": name}, exc_info=True)
            result = _fail(
                f"the task list is unavailable ({type(e).__name__}); try again later",
                replies.STORE_ERROR[0],
            )
        return ToolResult(
            result.ok, result.content, {**args, **result.summary}, result.spoken, result.error
        )

    async def _create_task(self, args: dict[str, object]) -> ToolResult:
        title = _text(args, "title") or ""
        due_date, due_time = _date(args, "due_date"), _time(args, "due_time")
        if due_time is not None and due_date is None:
            due_date = self._clock().date()
        priority = _text(args, "priority")
        project: ProjectRecord | None = None
        created = False
        if name := _text(args, "project"):
            project = await self._project(name)
            if project is None:
                project, created = await self._store.create_project(self._scope, name), True
        task = await self._store.add_task(
            self._scope,
            NewTask(
                title=title,
                due_date=due_date,
                due_time=due_time,
                priority=Priority(priority) if priority else None,
                project_id=project.id if project else None,
            ),
        )
        payload: dict[str, object] = {"task": _brief(task)}
        if created:
            payload["created_project"] = True
        spoken = replies.added(task, today=self._clock().date())
        return _ok(payload, spoken, task_id=task.id, title=task.title)

    async def _list_tasks(self, args: dict[str, object]) -> ToolResult:
        project: ProjectRecord | None = None
        if name := _text(args, "project"):
            project = await self._project(name)
            if project is None:
                names = [p.name for p in await self._store.list_projects(self._scope)]
                return _fail(
                    f"no project named '{name}'",
                    f"You don't have a project called “{name}”.",
                    projects=names,
                )
        tasks = await self._store.list_tasks(
            self._scope,
            include_done=args.get("include_done") is True,
            project_id=project.id if project else None,
            due_date=_date(args, "due_date"),
        )
        shown = tasks[:LIST_AT_MOST]
        payload: dict[str, object] = {"count": len(tasks), "tasks": [_brief(t) for t in shown]}
        if len(tasks) > len(shown):
            payload["truncated"] = True
        today = self._clock().date()
        spoken = " ".join(
            [
                f"You have {replies.count_phrase(len(tasks))}.",
                *replies.read_list(tasks, today=today),
            ]
        )
        return _ok(payload, spoken, count=len(tasks))

    async def _complete_task(self, args: dict[str, object]) -> ToolResult:
        task = await self._resolve(_text(args, "task") or "", include_done=False)
        if isinstance(task, ToolResult):
            return task
        done = await self._store.complete_task(self._scope, task.id)
        if done is None:
            return _gone(task)
        spoken = f"I marked {replies.quote(task.title)} as complete."
        return _ok({"task": _brief(done)}, spoken, task_id=task.id, title=task.title)

    async def _delete_task(self, args: dict[str, object]) -> ToolResult:
        task = await self._resolve(_text(args, "task") or "", include_done=True)
        if isinstance(task, ToolResult):
            return task
        if not await self._store.delete_task(self._scope, task.id):
            return _gone(task)
        spoken = f"I deleted {replies.quote(task.title)}."
        return _ok({"deleted": _brief(task)}, spoken, task_id=task.id, title=task.title)

    async def _rename_task(self, args: dict[str, object]) -> ToolResult:
        task = await self._resolve(_text(args, "task") or "", include_done=True)
        if isinstance(task, ToolResult):
            return task
        new_title = _text(args, "new_title") or ""
        renamed = await self._store.rename_task(self._scope, task.id, new_title)
        if renamed is None:
            return _gone(task)
        spoken = f"I renamed {replies.quote(task.title)} to {replies.quote(new_title)}."
        payload: dict[str, object] = {"old_title": task.title, "task": _brief(renamed)}
        return _ok(payload, spoken, task_id=task.id, title=task.title)

    async def _search_tasks(self, args: dict[str, object]) -> ToolResult:
        query = _text(args, "query") or ""
        tasks = await self._store.list_tasks(self._scope, include_done=True)
        scored = sorted(((title_score(query, t.title), t) for t in tasks), key=lambda st: -st[0])
        needle = query.casefold()
        found = [t for s, t in scored if s >= ASK_AT or needle in t.title.casefold()]
        shown = found[:LIST_AT_MOST]
        spoken = f"I found {replies.count_phrase(len(found))} like {replies.quote(query)}."
        payload: dict[str, object] = {"count": len(found), "tasks": [_brief(t) for t in shown]}
        return _ok(payload, spoken, count=len(found))

    async def _create_project(self, args: dict[str, object]) -> ToolResult:
        name = _text(args, "name") or ""
        existing = await self._store.list_projects(self._scope)
        same = next((p for p in existing if p.name.casefold() == name.casefold()), None)
        project = same or await self._store.create_project(self._scope, name)
        payload: dict[str, object] = {"project": {"id": project.id, "name": project.name}}
        payload["already_existed"] = same is not None
        spoken = (
            f"You already have a project called “{project.name}”."
            if same
            else f"I created the project “{project.name}”."
        )
        return _ok(payload, spoken, project_id=project.id, name=project.name)

    async def _list_projects(self, _args: dict[str, object]) -> ToolResult:
        projects = await self._store.list_projects(self._scope)
        names = [f"“{p.name}”" for p in projects]
        spoken = f"Your projects are {', '.join(names)}." if names else "You have no projects yet."
        payload: dict[str, object] = {
            "count": len(projects),
            "projects": [{"id": p.id, "name": p.name} for p in projects],
        }
        return _ok(payload, spoken, count=len(projects))

    async def _project(self, name: str) -> ProjectRecord | None:
        """The existing project ``name`` refers to, matched fuzzily, if any."""
        projects = await self._store.list_projects(self._scope)
        scored = sorted(((title_score(name, p.name), p) for p in projects), key=lambda sp: -sp[0])
        return scored[0][1] if scored and scored[0][0] >= _PROJECT_MATCH else None

    async def _resolve(self, ref: str, *, include_done: bool) -> TaskRecord | ToolResult:
        """The task ``ref`` names (an id, or a title matched fuzzily), or a failure result."""
        everything = await self._store.list_tasks(self._scope, include_done=True)
        by_id = next((t for t in everything if t.id == ref), None)
        if by_id is not None:
            return by_id
        pool = everything if include_done else [t for t in everything if not t.done]
        match = match_task([ref], pool)
        if match.verdict is Verdict.ACT and match.best is not None:
            return match.best.task
        if match.verdict is Verdict.ASK:
            close = [c.task for c in match.ranked if c.score >= ASK_AT][:3]
            spoken = f"Did you mean {' or '.join(replies.quote(t.title) for t in close)}?"
            return _fail(
                f"'{ref}' is ambiguous; ask the user which task, then call again with its id",
                spoken,
                candidates=[_brief(t) for t in close],
            )
        if not include_done:
            done = match_task([ref], [t for t in everything if t.done])
            if done.verdict is Verdict.ACT and done.best is not None:
                task = done.best.task
                return _fail(
                    f"'{task.title}' is already done",
                    f"{replies.quote(task.title)} is already done.",
                    done_task=_brief(task),
                )
        nearest = [c.task.title for c in match.ranked[:5]]
        return _fail(
            f"no task matches '{ref}'",
            f"I couldn't find {replies.quote(ref)} on your list.",
            hint={"closest_titles": nearest} if nearest else {"open_tasks": 0},
        )


def _gone(task: TaskRecord) -> ToolResult:
    return _fail(f"task '{task.title}' no longer exists", "Sorry, that task is gone.")
