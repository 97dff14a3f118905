"""Voice sessions, their messages and their voice commands in SQL."""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Select, String, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from voxdialog.brain.base import CommandOutcome
from voxdialog.db.engine import Database
from voxdialog.db.errors import SessionConflictError, UnknownSessionError
from voxdialog.db.models import Message, VoiceCommand, VoiceSession, new_id, utcnow
from voxdialog.db.sealing import (
    command_context,
    message_context,
    seal,
    seal_json,
    unseal,
    unseal_json,
)
from voxdialog.pipeline.recorder import MessageRecord, SessionInfo
from voxdialog.security.principal import Scope

ACTIVE = "active"
ENDED = "ended"
INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A voice session as stored."""

    id: str
    tenant_id: str
    user_id: str
    agent: str
    model: str
    client: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    status: str  # "active" | "ended" | "interrupted"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A conversation message as stored; ``seq`` orders it within its session."""

    id: str
    session_id: str
    item_id: str
    seq: int
    role: str
    text: str
    status: str
    audio_ms: float | None
    timings: Mapping[str, float]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class StoredCommand:
    """A voice command as stored."""

    id: str
    session_id: str | None
    message_item_id: str | None
    text: str
    intent: str
    entities: Mapping[str, object]
    confidence: float
    success: bool
    error: str | None
    processing_ms: float
    created_at: dt.datetime


def json_safe(value: object) -> object:
    """``value`` made storable as JSON: dates become ISO strings, enums their values.

    Brains put whatever they parsed into command entities (dates, times, priorities); the
    record of a command must never fail because of that.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    return str(value)


def storable_text(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL text columns cannot hold.

    A transcript or a client's text may carry one; the record must not fail because of it,
    and both backends must store the same thing.
    """
    return text.replace("\x00", "")


def _fit(value: str, column: InstrumentedAttribute[str]) -> str:
    """``value`` cut to the column's length (PostgreSQL refuses longer values, SQLite not).

    Only for descriptive labels a client may choose freely, such as the model name.
    """
    column_type = column.type
    if isinstance(column_type, String) and column_type.length is not None:
        return value[: column_type.length]
    return value


def _finite_or_none(value: float | None) -> float | None:
    # SQLite stores NaN as NULL and PostgreSQL keeps it: store NULL on both.
    return value if value is not None and math.isfinite(value) else None


def stored_session(row: VoiceSession) -> StoredSession:
    """The record of a session row."""
    return StoredSession(
        id=row.id,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        agent=row.agent,
        model=row.model,
        client=row.client,
        started_at=row.started_at,
        ended_at=row.ended_at,
        status=row.status,
    )


def owned_session(scope: Scope, session_id: str) -> Select[VoiceSession]:
    """The session ``session_id`` if it is the scope's."""
    return select(VoiceSession).where(
        VoiceSession.id == session_id,
        VoiceSession.tenant_id == scope.tenant_id,
        VoiceSession.user_id == scope.user_id,
    )


def sessions_newest_first(scope: Scope) -> Select[VoiceSession]:
    """The scope's sessions, the latest started first."""
    return (
        select(VoiceSession)
        .where(VoiceSession.tenant_id == scope.tenant_id, VoiceSession.user_id == scope.user_id)
        .order_by(VoiceSession.started_at.desc(), VoiceSession.id)
    )


def _session_scope(session: Session, session_id: str, *, lock: bool = False) -> Scope:
    query = select(VoiceSession.tenant_id, VoiceSession.user_id).where(
        VoiceSession.id == session_id
    )
    if lock:
        # Row lock on PostgreSQL (SQLite ignores it: its IMMEDIATE transactions already
        # serialise writers), so writers of one session take turns.
        query = query.with_for_update()
    found = session.execute(query).first()
    if found is None:
        raise UnknownSessionError(f"voice session {session_id!r} was never started")
    tenant_id, user_id = found
    return Scope(tenant_id=tenant_id, user_id=user_id)


async def start_session(db: Database, info: SessionInfo) -> None:
    """Insert the session as active (again active, if the same user restarts the same id).

    Starting it again also records its agent, which may have changed.

    The agent, model and client labels are cut to their column lengths.

    Raises:
        SessionConflictError: The id belongs to another user's session.
    """
    try:
        await _start_session_once(db, info)
    except IntegrityError:
        # Another connection inserted the same id between our read and our insert (only
        # possible on PostgreSQL); the row exists now, so the second try updates or refuses it.
        await _start_session_once(db, info)


async def _start_session_once(db: Database, info: SessionInfo) -> None:
    await db.write(lambda session: _start_session_in(session, info))


def _start_session_in(session: Session, info: SessionInfo) -> None:
    row = session.get(VoiceSession, info.session_id)
    if row is None:
        session.add(
            VoiceSession(
                id=info.session_id,
                tenant_id=info.scope.tenant_id,
                user_id=info.scope.user_id,
                agent=_fit(info.agent, VoiceSession.agent),
                model=_fit(info.model, VoiceSession.model),
                client=_fit(info.client, VoiceSession.client),
                started_at=utcnow(),
                status=ACTIVE,
            )
        )
        return
    if (row.tenant_id, row.user_id) != (info.scope.tenant_id, info.scope.user_id):
        raise SessionConflictError(f"voice session {info.session_id!r} belongs to another user")
    row.status = ACTIVE
    row.ended_at = None
    # A resumed session may speak as another agent (a session's agent is its latest).
    row.agent = _fit(info.agent, VoiceSession.agent)


async def end_session(db: Database, session_id: str) -> None:
    """Mark an active session ended (no-op if unknown or already closed)."""
    statement = (
        update(VoiceSession)
        .where(VoiceSession.id == session_id, VoiceSession.status == ACTIVE)
        .values(status=ENDED, ended_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await db.write(lambda session: session.execute(statement))


async def save_message(db: Database, record: MessageRecord) -> None:
    """Insert a message, or replace the one with the same ``item_id`` (keeping its ``seq``).

    Concurrent saves into one session take turns, so every message gets its own ``seq``.
    NUL characters are left out of the text and timings that are not finite are dropped.

    Raises:
        UnknownSessionError: ``record.session_id`` was never started.
    """
    # JSON has no NaN or infinity; PostgreSQL refuses them in a json column.
    timings = {str(stage): float(ms) for stage, ms in record.timings.items() if math.isfinite(ms)}
    await db.write(lambda session: _save_message_in(session, db, record, timings))


def _save_message_in(
    session: Session, db: Database, record: MessageRecord, timings: dict[str, float]
) -> None:
    owner = _session_scope(session, record.session_id, lock=True)
    now = utcnow()
    row = session.scalar(
        select(Message).where(
            Message.session_id == record.session_id, Message.item_id == record.item_id
        )
    )
    if row is None:
        last = session.scalar(
            select(func.max(Message.seq)).where(Message.session_id == record.session_id)
        )
        row = Message(
            session_id=record.session_id,
            tenant_id=owner.tenant_id,
            user_id=owner.user_id,
            item_id=record.item_id,
            seq=(last or 0) + 1,
            created_at=now,
        )
        session.add(row)
    row.role = record.role
    row.text = seal(
        db, storable_text(record.text), message_context(record.session_id, record.item_id)
    )
    row.status = record.status
    row.audio_ms = _finite_or_none(record.audio_ms)
    row.timings = timings
    row.updated_at = now


async def delete_message(db: Database, session_id: str, item_id: str) -> bool:
    """Remove a message; False if there was none."""
    statement = delete(Message).where(Message.session_id == session_id, Message.item_id == item_id)
    result = await db.write(lambda session: session.execute(statement))
    return cast(CursorResult[Any], result).rowcount > 0


async def record_command(
    db: Database,
    session_id: str,
    *,
    item_id: str | None,
    text: str,
    outcome: CommandOutcome,
) -> None:
    """Store what the brain did for one user turn of ``session_id``.

    NUL characters are left out of the texts; the intent is cut to its column length.

    Raises:
        UnknownSessionError: ``session_id`` was never started.
    """
    await db.write(
        lambda session: _record_command_in(session, db, session_id, item_id, text, outcome)
    )


def _record_command_in(
    session: Session,
    db: Database,
    session_id: str,
    item_id: str | None,
    text: str,
    outcome: CommandOutcome,
) -> None:
    owner = _session_scope(session, session_id)
    command_id = new_id()
    entities = {str(key): json_safe(v) for key, v in outcome.entities.items()}
    session.add(
        VoiceCommand(
            id=command_id,
            session_id=session_id,
            tenant_id=owner.tenant_id,
            user_id=owner.user_id,
            message_item_id=item_id,
            text=seal(db, storable_text(text), command_context(command_id, "text")),
            intent=_fit(outcome.intent, VoiceCommand.intent),
            entities=seal_json(db, entities, command_context(command_id, "entities")),
            confidence=float(outcome.confidence),
            success=outcome.success,
            error=(
                seal(db, storable_text(outcome.error), command_context(command_id, "error"))
                if outcome.error is not None
                else None
            ),
            processing_ms=float(outcome.processing_ms),
            created_at=utcnow(),
        )
    )


async def close_stale_sessions(db: Database) -> int:
    """Mark every session still active as interrupted; call once at start, after a crash.

    The end time is the session's last recorded activity. With several server processes on
    one database this would also close the other processes' live sessions: it is meant for
    the single-process deployment.

    Returns:
        How many sessions were closed.
    """
    last_activity = (
        select(func.max(Message.updated_at))
        .where(Message.session_id == VoiceSession.id)
        .scalar_subquery()
    )
    async with db.sessions() as session, session.begin():
        result = await session.execute(
            update(VoiceSession)
            .where(VoiceSession.status == ACTIVE)
            .values(
                status=INTERRUPTED, ended_at=func.coalesce(last_activity, VoiceSession.started_at)
            )
            .execution_options(synchronize_session=False)
        )
    return cast(CursorResult[Any], result).rowcount


async def get_session(db: Database, scope: Scope, session_id: str) -> StoredSession | None:
    """One session of the scope, or None."""
    async with db.reads() as session:
        row = await session.scalar(owned_session(scope, session_id))
    return stored_session(row) if row is not None else None


async def list_sessions(db: Database, scope: Scope, *, limit: int = 50) -> list[StoredSession]:
    """The scope's sessions, newest first."""
    async with db.reads() as session:
        rows = await session.scalars(sessions_newest_first(scope).limit(limit))
        return [stored_session(row) for row in rows]


async def list_messages(db: Database, scope: Scope, session_id: str) -> list[StoredMessage]:
    """The messages of one of the scope's sessions, in conversation order."""
    async with db.reads() as session:
        rows = await session.scalars(
            select(Message)
            .where(
                Message.session_id == session_id,
                Message.tenant_id == scope.tenant_id,
                Message.user_id == scope.user_id,
            )
            .order_by(Message.seq)
        )
        return [
            StoredMessage(
                id=row.id,
                session_id=row.session_id,
                item_id=row.item_id,
                seq=row.seq,
                role=row.role,
                text=unseal(db, row.text, message_context(row.session_id, row.item_id)),
                status=row.status,
                audio_ms=row.audio_ms,
                timings=dict(row.timings),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in rows
        ]


async def list_commands(db: Database, scope: Scope, session_id: str) -> list[StoredCommand]:
    """The voice commands of one of the scope's sessions, oldest first."""
    async with db.sessions() as session:
        rows = await session.scalars(
            select(VoiceCommand)
            .where(
                VoiceCommand.session_id == session_id,
                VoiceCommand.tenant_id == scope.tenant_id,
                VoiceCommand.user_id == scope.user_id,
            )
            .order_by(VoiceCommand.created_at, VoiceCommand.id)
        )
        return [
            StoredCommand(
                id=row.id,
                session_id=row.session_id,
                message_item_id=row.message_item_id,
                text=unseal(db, row.text, command_context(row.id, "text")),
                intent=row.intent,
                entities=unseal_json(db, row.entities, command_context(row.id, "entities")),
                confidence=row.confidence,
                success=row.success,
                error=(
                    unseal(db, row.error, command_context(row.id, "error"))
                    if row.error is not None
                    else None
                ),
                processing_ms=row.processing_ms,
                created_at=row.created_at,
            )
            for row in rows
        ]
