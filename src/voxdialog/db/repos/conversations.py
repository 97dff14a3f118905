"""Conversations (voice sessions) as the app lists and removes them: paged, counted, scoped.

Every query is filtered by tenant and user: another user's conversation is simply not found.
Message and command texts are read through `voxdialog.db.repos.sessions`; the one text read
here is the opening user line a listing shows as the title.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voxdialog.db.engine import Database
from voxdialog.db.models import Message, VoiceCommand, VoiceSession
from voxdialog.db.repos.sessions import (
    StoredSession,
    owned_session,
    sessions_newest_first,
    stored_session,
)
from voxdialog.db.sealing import message_context, unseal
from voxdialog.security.principal import Scope

USER_ROLE = "user"


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """A voice session with what a listing shows about it.

    Attributes:
        session: The session row.
        message_count: How many messages it holds.
        command_count: How many voice commands it recorded.
        opening: The text of its first non-blank user message, if any.
    """

    session: StoredSession
    message_count: int
    command_count: int
    opening: str | None


async def _message_counts(
    session: AsyncSession, scope: Scope, ids: Sequence[str]
) -> dict[str, int]:
    rows = await session.execute(
        select(Message.session_id, func.count())
        .where(
            Message.session_id.in_(ids),
            Message.tenant_id == scope.tenant_id,
            Message.user_id == scope.user_id,
        )
        .group_by(Message.session_id)
    )
    return {row[0]: row[1] for row in rows}


async def _command_counts(
    session: AsyncSession, scope: Scope, ids: Sequence[str]
) -> dict[str, int]:
    rows = await session.execute(
        select(VoiceCommand.session_id, func.count())
        .where(
            VoiceCommand.session_id.in_(ids),
            VoiceCommand.tenant_id == scope.tenant_id,
            VoiceCommand.user_id == scope.user_id,
        )
        .group_by(VoiceCommand.session_id)
    )
    return {session_id: count for session_id, count in rows if session_id is not None}


async def _openings(
    db: Database, session: AsyncSession, scope: Scope, ids: Sequence[str]
) -> dict[str, str]:
    """The first non-blank user message text of each session (one query for the page)."""
    first = (
        select(Message.session_id, func.min(Message.seq).label("seq"))
        .where(
            Message.session_id.in_(ids),
            Message.tenant_id == scope.tenant_id,
            Message.user_id == scope.user_id,
            Message.role == USER_ROLE,
            func.trim(Message.text) != "",
            # A turn still being transcribed (or that failed) has no words yet, sealed or not.
            Message.status.not_in(("in_progress", "failed")),
        )
        .group_by(Message.session_id)
        .subquery()
    )
    rows = await session.execute(
        select(Message.session_id, Message.item_id, Message.text).join(
            first, (Message.session_id == first.c.session_id) & (Message.seq == first.c.seq)
        )
    )
    # Texts may be sealed at rest: open them like every other read of a message.
    return {sid: unseal(db, text, message_context(sid, item)) for sid, item, text in rows}


async def _summaries(
    db: Database, session: AsyncSession, scope: Scope, rows: Sequence[VoiceSession]
) -> list[SessionSummary]:
    ids = [row.id for row in rows]
    if not ids:
        return []
    messages = await _message_counts(session, scope, ids)
    commands = await _command_counts(session, scope, ids)
    openings = await _openings(db, session, scope, ids)
    return [
        SessionSummary(
            session=stored_session(row),
            message_count=messages.get(row.id, 0),
            command_count=commands.get(row.id, 0),
            opening=openings.get(row.id),
        )
        for row in rows
    ]


async def list_session_summaries(
    db: Database, scope: Scope, *, limit: int, offset: int = 0, status: str | None = None
) -> list[SessionSummary]:
    """A page of the scope's sessions, newest first.

    Args:
        db: The database.
        scope: Whose sessions.
        limit: At most this many.
        offset: Skip this many first.
        status: Only sessions in this status (``active``, ``ended``, ``interrupted``).
    """
    query = sessions_newest_first(scope)
    if status is not None:
        query = query.where(VoiceSession.status == status)
    query = query.limit(limit).offset(offset)
    async with db.sessions() as session:
        rows = list(await session.scalars(query))
        return await _summaries(db, session, scope, rows)


async def get_session_summary(db: Database, scope: Scope, session_id: str) -> SessionSummary | None:
    """One of the scope's sessions with its counts, or None."""
    async with db.sessions() as session:
        row = await session.scalar(owned_session(scope, session_id))
        if row is None:
            return None
        (summary,) = await _summaries(db, session, scope, [row])
    return summary


async def delete_session(db: Database, scope: Scope, session_id: str) -> bool:
    """Delete one of the scope's sessions; its messages and commands go with it (FK cascade).

    Returns:
        False if the scope has no such session.
    """
    async with db.sessions() as session, session.begin():
        result = await session.execute(
            delete(VoiceSession).where(
                VoiceSession.id == session_id,
                VoiceSession.tenant_id == scope.tenant_id,
                VoiceSession.user_id == scope.user_id,
            )
        )
    return cast(CursorResult[Any], result).rowcount > 0
