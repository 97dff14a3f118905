"""TaskTools: the task and project tools an LLM may call, run server-side on the scoped store."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field

from voxdialog.brain import replies
from voxdialog.brain.matching import ASK_AT, Verdict, match_task, title_score
from voxdialog.brain.tasks import NewTask, Priority, ProjectRecord, TaskRecord, TaskStore
from voxdialog.providers.base import ToolSpec
from voxdialog.security.principal import Scope

log = logging.getLogger(__name__)

LIST_AT_MOST = 30
"""How many tasks a tool result lists (the count is always complete)."""
TOOL_GUIDANCE = (
    "You manage the user's to-do list with the tools. Use them for anything about tasks or "
    "projects, never pretend: say a change is done only after the tool reports ok. Work out "
    "relative dates from today's date. When a tool reports an ambiguous task, ask which one "
    "the user means; when it reports an error, fix the arguments or tell the user briefly."
)
"""Added to the system prompt when the tools are offered."""

_PROJECT_MATCH = 85.0  # a project name this close to an existing one is that project
_TASK_REF = "The task: its title as the user said it (it is matched fuzzily), or its id."


def _prop(kind: str, description: str, **extra: object) -> dict[str, object]:
    return {"type": kind, "description": description, **extra}


def _spec(name: str, description: str, required: tuple[str, ...], /, **props: object) -> ToolSpec:
    schema: dict[str, object] = {
        "type": "object",
        "properties": dict(props),
        "required": list(required),
        "additionalProperties": False,
    }
    return ToolSpec(name=name, description=description, parameters=schema)


_DATE = _prop("string", "Due date, YYYY-MM-DD.", pattern=r"^\d{4}-\d{2}-\d{2}$")
_TIME = _prop("string", "Due time, 24-hour HH:MM.", pattern=r"^\d{1,2}:\d{2}(:\d{2})?$")

SPECS: tuple[ToolSpec, ...] = (
    _spec(
        "create_task",
        "Add a task to the user's to-do list.",
        ("title",),
        title=_prop("string", "Short title, e.g. 'Buy milk'."),
        due_date=_DATE,
        due_time=_TIME,
        priority=_prop("string", "Priority.", enum=[p.value for p in Priority]),
        project=_prop("string", "Project name; created if it does not exist."),
    ),
    _spec(
        "list_tasks",
        "List the user's tasks (open ones unless include_done).",
        (),
        include_done=_prop("boolean", "Also list completed tasks."),
        project=_prop("string", "Only tasks of this project."),
        due_date=_DATE | {"description": "Only tasks due on this date, YYYY-MM-DD."},
    ),
    _spec("complete_task", "Mark a task as done.", ("task",), task=_prop("string", _TASK_REF)),
    _spec("delete_task", "Delete a task.", ("task",), task=_prop("string", _TASK_REF)),
    _spec(
        "rename_task",
        "Change a task's title.",
        ("task", "new_title"),
        task=_prop("string", _TASK_REF),
        new_title=_prop("string", "The new title."),
    ),
    _spec(
        "search_tasks",
        "Find tasks (open and done) whose title resembles the query.",
        ("query",),
        query=_prop("string", "Words of the title."),
    ),
    _spec("create_project", "Create a project.", ("name",), name=_prop("string", "Its name.")),
    _spec("list_projects", "List the user's projects.", ()),
)
"""Every tool, in the order offered to the model."""


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


class BadArguments(ValueError):
    """The model's arguments do not fit the tool's schema; retrying with fixed ones helps."""


def _json(payload: Mapping[str, object]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _ok(payload: dict[str, object], spoken: str, **summary: object) -> ToolResult:
    return ToolResult(True, _json({"ok": True, **payload}), summary, spoken)


def _fail(error: str, spoken: str, **extra: object) -> ToolResult:
    summary = {k: v for k, v in extra.items() if k != "hint"}
    return ToolResult(False, _json({"ok": False, "error": error, **extra}), summary, spoken, error)


def parse_arguments(spec: ToolSpec, raw: str) -> dict[str, object]:
    """Check the model's JSON ``raw`` against ``spec``'s schema, leniently.

    Strings are stripped, an empty optional string counts as absent, enums are matched
    case-insensitively, numbers are accepted as strings and "true"/"false" as booleans;
    unknown keys are ignored. Raises ``BadArguments`` listing every problem.
    """
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as e:
        raise BadArguments(f"arguments are not valid JSON ({e.msg} at {e.pos})") from e
    if not isinstance(value, dict):
        raise BadArguments("arguments must be a JSON object")
    props = spec.parameters.get("properties")
    required = spec.parameters.get("required")
    assert isinstance(props, dict)
    assert isinstance(required, list)
    args: dict[str, object] = {}
    problems: list[str] = []
    for key, schema in props.items():
        got = _coerce(value.get(key), schema)
        if isinstance(got, _Problem):
            problems.append(f"'{key}' {got.text}")
        elif got is not None:
            args[key] = got
        elif key in required:
            problems.append(f"'{key}' is required")
    if problems:
        raise BadArguments("invalid arguments: " + "; ".join(problems))
    return args


@dataclass(frozen=True, slots=True)
class _Problem:
    text: str


def _coerce(value: object, schema: Mapping[str, object]) -> object:
    """The value as the schema's type, None if absent, or a ``_Problem``."""
    if value is None:
        return None
    if schema["type"] == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return _Problem("must be true or false")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return _Problem("must be a string")
    text = value.strip()
    if not text:
        return None
    enum = schema.get("enum")
    if isinstance(enum, list):
        if text.lower() not in enum:
            return _Problem("must be one of " + ", ".join(map(str, enum)))
        return text.lower()
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and not re.fullmatch(pattern, text):
        return _Problem(f"has the wrong format ({schema['description']})")
    return text


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

TOOL_NAMES: tuple[str, ...] = tuple(spec.name for spec in SPECS)
"""The server's task tools, by name (what an agent may enable)."""


def enabled_specs(enabled: Collection[str] | None) -> tuple[ToolSpec, ...]:
    """The specs of the ``enabled`` tool names, in their usual order (``None``: all of them)."""
    if enabled is None:
        return SPECS
    return tuple(spec for spec in SPECS if spec.name in enabled)


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
