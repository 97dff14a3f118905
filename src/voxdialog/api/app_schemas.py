"""Request and response bodies of the app routes: conversations, voice sessions, tasks, projects.

Dates are ISO strings (``2026-11-30``), due times local wall-clock times without a zone
(``14:30:00``), datetimes carry their zone (UTC).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from voxdialog.api.agent_schemas import NOT_BLANK
from voxdialog.api.schemas import Strict
from voxdialog.brain.tasks import Priority
from voxdialog.db.models import NAME_LENGTH
from voxdialog.db.repos.conversations import SessionSummary
from voxdialog.db.repos.sessions import StoredCommand, StoredMessage
from voxdialog.db.repos.task_queries import ProjectDetail, TaskChanges, TaskDetail, clean_text
from voxdialog.db.repos.tasks import project_key

MAX_ID_LENGTH = 64
MAX_TITLE = 500
TITLE_CHARS = 80
"""A conversation's title: its opening user line, cut to this many characters."""

Limit = Annotated[int, Query(ge=1, le=100, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=100_000, description="Items to skip.")]
SessionStatus = Literal["active", "ended", "interrupted"]


def plausible_id(value: str) -> bool:
    """Whether ``value`` could be an object id at all (else the object is simply not found)."""
    return 0 < len(value) <= MAX_ID_LENGTH and "\x00" not in value


def _storable(text: str) -> str:
    # A JSON string may hold lone surrogates, which no database column can store.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    cleaned = clean_text(text)
    if not cleaned:
        raise ValueError("must not be blank")
    return cleaned


def _fits_folded(name: str) -> str:
    if len(project_key(name)) > NAME_LENGTH:
        raise ValueError(f"must be at most {NAME_LENGTH} characters once case-folded")
    return name


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_WALL_CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"
_WALL_CLOCK = re.compile(_WALL_CLOCK_PATTERN)


def _date_text(value: object) -> object:
    # Only the ISO form: pydantic alone would also take numbers as Unix timestamps.
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("must be a date like 2026-11-30")


def _wall_clock_text(value: object) -> object:
    # A due time is a time of the user's day: no zone, and not a number of seconds.
    if isinstance(value, str) and _WALL_CLOCK.fullmatch(value):
        return value
    raise ValueError("must be a local time like 14:30 or 14:30:00, without a time zone")


def _not_nullable(schema: dict[str, Any]) -> None:
    """The schema of a field that may be left out but not sent as null."""
    options = schema.pop("anyOf", [])
    kept = [option for option in options if option.get("type") != "null"]
    schema.pop("default", None)
    if len(kept) == 1:
        schema.update(kept[0])
    elif kept:
        schema["anyOf"] = kept


def _refuse_null(value: object) -> object:
    if value is None:
        raise ValueError("may not be null")
    return value


ObjectId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=MAX_ID_LENGTH)
]
# NOT_BLANK in the schema too: a title of only a separator such as U+001E is blank to Python
# (and refused), so the published schema must not call it valid.
TaskTitle = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TITLE, pattern=NOT_BLANK),
    AfterValidator(_storable),
]
ProjectName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=NAME_LENGTH, pattern=NOT_BLANK),
    AfterValidator(_storable),
    AfterValidator(_fits_folded),
]
# JSON Schema's "time" format demands a zone offset; a due time never has one.
_WALL_CLOCK_SCHEMA = WithJsonSchema(
    {"type": "string", "pattern": _WALL_CLOCK_PATTERN, "examples": ["14:30:00"]}
)
DueDate = Annotated[dt.date, BeforeValidator(_date_text)]
DueTime = Annotated[dt.time, BeforeValidator(_wall_clock_text), _WALL_CLOCK_SCHEMA]
WallClock = Annotated[dt.time, _WALL_CLOCK_SCHEMA]


class TaskIn(Strict):
    """``POST /api/tasks``."""

    title: TaskTitle
    due_date: DueDate | None = None
    due_time: DueTime | None = None
    priority: Priority | None = None
    project_id: ObjectId | None = Field(None, description="One of the caller's projects.")


class TaskPatch(Strict):
    """``PATCH /api/tasks/{id}``: the fields sent change; ``null`` clears an optional field."""

    title: TaskTitle | None = Field(None, json_schema_extra=_not_nullable)
    done: StrictBool | None = Field(
        None,
        description="true sets completed_at (kept if already done); false clears it.",
        json_schema_extra=_not_nullable,
    )
    due_date: DueDate | None = None
    due_time: DueTime | None = None
    priority: Priority | None = None
    project_id: ObjectId | None = None

    @field_validator("title", "done", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        return _refuse_null(value)

    def changes(self) -> TaskChanges:
        """The sent fields, in the store's form."""
        sent: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        return TaskChanges(**sent)


class TaskOut(BaseModel):
    """A task."""

    id: str
    object: Literal["task"] = "task"
    title: str
    done: bool
    due_date: dt.date | None
    due_time: WallClock | None
    priority: Priority | None
    project_id: str | None
    project_name: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None

    @classmethod
    def of(cls, task: TaskDetail) -> TaskOut:
        """From the store's record."""
        return cls(
            id=task.id,
            title=task.title,
            done=task.done,
            due_date=task.due_date,
            due_time=task.due_time,
            priority=task.priority,
            project_id=task.project_id,
            project_name=task.project_name,
            created_at=task.created_at,
            updated_at=task.updated_at,
            completed_at=task.completed_at,
        )


class ProjectIn(Strict):
    """``POST /api/projects``."""

    name: ProjectName = Field(description="Unique among the caller's projects, ignoring case.")


class ProjectPatch(Strict):
    """``PATCH /api/projects/{id}``."""

    name: ProjectName | None = Field(None, json_schema_extra=_not_nullable)

    @field_validator("name", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        return _refuse_null(value)


class ProjectOut(BaseModel):
    """A project with its task counts."""

    id: str
    object: Literal["project"] = "project"
    name: str
    created_at: dt.datetime
    task_count: int
    open_task_count: int

    @classmethod
    def of(cls, project: ProjectDetail) -> ProjectOut:
        """From the store's record."""
        return cls(
            id=project.id,
            name=project.name,
            created_at=project.created_at,
            task_count=project.task_count,
            open_task_count=project.open_task_count,
        )


def conversation_title(opening: str | None) -> str | None:
    """The first line of the opening user message, cut to `TITLE_CHARS` characters."""
    if opening is None:
        return None
    line = next((part.strip() for part in opening.splitlines() if part.strip()), "")
    if len(line) > TITLE_CHARS:
        return line[: TITLE_CHARS - 1].rstrip() + "…"
    return line or None


class _SessionFields(BaseModel):
    id: str
    agent: str
    model: str
    client: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    status: str = Field(description="active, ended or interrupted (the server restarted).")
    message_count: int

    @staticmethod
    def _summary_fields(summary: SessionSummary) -> dict[str, Any]:
        """The fields every view of a session takes from the store's summary."""
        stored = summary.session
        return {
            "id": stored.id,
            "agent": stored.agent,
            "model": stored.model,
            "client": stored.client,
            "started_at": stored.started_at,
            "ended_at": stored.ended_at,
            "status": stored.status,
            "message_count": summary.message_count,
        }


class ConversationOut(_SessionFields):
    """A conversation (one voice session) as listed."""

    object: Literal["conversation"] = "conversation"
    title: str | None = Field(description="The opening user line, cut to 80 characters.")

    @classmethod
    def of(cls, summary: SessionSummary) -> ConversationOut:
        """From the store's summary."""
        return cls(**cls._summary_fields(summary), title=conversation_title(summary.opening))


class MessageOut(BaseModel):
    """One message of a conversation with its per-stage timings."""

    item_id: str
    role: str
    text: str
    status: str
    audio_ms: float | None
    timings: dict[str, float] = Field(
        description="Milliseconds per pipeline stage (e.g. stt_ms, brain_first_ms)."
    )
    created_at: dt.datetime

    @classmethod
    def of(cls, message: StoredMessage) -> MessageOut:
        """From the store's record."""
        return cls(
            item_id=message.item_id,
            role=message.role,
            text=message.text,
            status=message.status,
            audio_ms=message.audio_ms,
            timings=dict(message.timings),
            created_at=message.created_at,
        )


class ConversationDetailOut(ConversationOut):
    """A conversation with its messages in order."""

    messages: list[MessageOut]


class VoiceCommandOut(BaseModel):
    """What the assistant understood and did for one user turn."""

    id: str
    object: Literal["voice_command"] = "voice_command"
    session_id: str | None
    item_id: str | None = Field(description="The user message the command came from.")
    text: str
    intent: str
    entities: dict[str, Any]
    confidence: float
    processing_ms: float
    success: bool
    error: str | None
    created_at: dt.datetime

    @classmethod
    def of(cls, command: StoredCommand) -> VoiceCommandOut:
        """From the store's record."""
        return cls(
            id=command.id,
            session_id=command.session_id,
            item_id=command.message_item_id,
            text=command.text,
            intent=command.intent,
            entities=dict(command.entities),
            confidence=command.confidence,
            processing_ms=command.processing_ms,
            success=command.success,
            error=command.error,
            created_at=command.created_at,
        )


class VoiceSessionOut(_SessionFields):
    """A voice session with its counts."""

    object: Literal["voice_session"] = "voice_session"
    command_count: int

    @classmethod
    def of(cls, summary: SessionSummary) -> VoiceSessionOut:
        """From the store's summary."""
        return cls(**cls._summary_fields(summary), command_count=summary.command_count)


class ConversationExport(BaseModel):
    """A conversation as a download: the conversation, its messages and its voice commands."""

    object: Literal["conversation.export"] = "conversation.export"
    exported_at: dt.datetime
    conversation: ConversationOut
    messages: list[MessageOut]
    commands: list[VoiceCommandOut]
