"""The task tools as the model sees them: their JSON schemas, and a lenient check of arguments.

Running them on the store is ``brain/tools.py``; agents and the API need only the names here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from voxdialog.brain.tasks import Priority
from voxdialog.providers.base import ToolSpec

TOOL_GUIDANCE = (
    "You manage the user's to-do list with the tools. Use them for anything about tasks or "
    "projects, never pretend: say a change is done only after the tool reports ok. Work out "
    "relative dates from today's date. When a tool reports an ambiguous task, ask which one "
    "the user means; when it reports an error, fix the arguments or tell the user briefly."
)
"""Added to the system prompt when the tools are offered."""

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

TOOL_NAMES: tuple[str, ...] = tuple(spec.name for spec in SPECS)
"""The server's task tools, by name (what an agent may enable)."""


def enabled_specs(enabled: Collection[str] | None) -> tuple[ToolSpec, ...]:
    """The specs of the ``enabled`` tool names, in their usual order (``None``: all of them)."""
    if enabled is None:
        return SPECS
    return tuple(spec for spec in SPECS if spec.name in enabled)


class BadArguments(ValueError):
    """The model's arguments do not fit the tool's schema; retrying with fixed ones helps."""


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
