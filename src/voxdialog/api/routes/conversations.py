"""``/api/conversations`` and ``/api/voice-sessions``: the caller's own voice history.

A conversation is a voice session seen as a chat: its messages with their per-stage timings.
The same session seen as a voice session shows what the assistant understood and did (its
voice commands). Another user's sessions do not exist for the caller (404).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from voxdialog.api.app_schemas import (
    ConversationDetailOut,
    ConversationExport,
    ConversationOut,
    Limit,
    MessageOut,
    Offset,
    SessionStatus,
    VoiceCommandOut,
    VoiceSessionOut,
    plausible_id,
)
from voxdialog.api.deps import PrincipalDep, RuntimeDep
from voxdialog.api.errors import ApiError
from voxdialog.api.schemas import Page, page_of
from voxdialog.context.recorder import context_key
from voxdialog.db.models import utcnow
from voxdialog.db.repos.conversations import (
    SessionSummary,
    delete_session,
    get_session_summary,
    list_session_summaries,
)
from voxdialog.db.repos.sessions import list_commands, list_messages
from voxdialog.runtime import Runtime
from voxdialog.security.principal import Principal

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request"},
    401: {"description": "Not signed in"},
    404: {"description": "Not found"},
    429: {"description": "Too many requests"},
}
_OPEN: dict[int | str, dict[str, Any]] = {409: {"description": "The conversation is open"}}
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_-]")
router = APIRouter(prefix="/api", responses=ERRORS)


async def _summary(
    runtime: Runtime, principal: Principal, session_id: str, *, what: str
) -> SessionSummary:
    summary = (
        await get_session_summary(runtime.db, principal.scope, session_id)
        if plausible_id(session_id)
        else None
    )
    if summary is None:
        raise ApiError(404, f"{what} not found.", code="not_found")
    return summary


@router.get("/conversations", tags=["conversations"])
async def conversations(
    principal: PrincipalDep, runtime: RuntimeDep, limit: Limit = 20, offset: Offset = 0
) -> Page[ConversationOut]:
    """The caller's conversations, newest first."""
    found = await list_session_summaries(
        runtime.db, principal.scope, limit=limit + 1, offset=offset
    )
    return page_of(found, limit, ConversationOut.of)


@router.get("/conversations/{conversation_id}", tags=["conversations"])
async def read_conversation(
    conversation_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> ConversationDetailOut:
    """One conversation with its messages in order, each with its per-stage timings."""
    summary = await _summary(runtime, principal, conversation_id, what="Conversation")
    messages = await list_messages(runtime.db, principal.scope, conversation_id)
    return ConversationDetailOut(
        **ConversationOut.of(summary).model_dump(),
        messages=[MessageOut.of(message) for message in messages],
    )


@router.delete(
    "/conversations/{conversation_id}", status_code=204, tags=["conversations"], responses=_OPEN
)
async def remove_conversation(
    conversation_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> Response:
    """Delete a conversation with its messages and voice commands (not while it is open)."""
    await _summary(runtime, principal, conversation_id, what="Conversation")
    if await runtime.sessions.is_open(conversation_id):
        # Its live session would go on recording into a conversation that no longer exists.
        raise ApiError(
            409,
            "This conversation is open; end its session first.",
            code="conversation_active",
        )
    if not await delete_session(runtime.db, principal.scope, conversation_id):
        raise ApiError(404, "Conversation not found.", code="not_found")
    # A later resume of the same id must not bring the deleted context back from the cache.
    runtime.context.invalidate(context_key(principal.scope, conversation_id))
    return Response(status_code=204)


@router.get(
    "/conversations/{conversation_id}/export",
    tags=["conversations"],
    responses={200: {"description": "A JSON file (Content-Disposition: attachment)"}},
)
async def export_conversation(
    conversation_id: str, response: Response, principal: PrincipalDep, runtime: RuntimeDep
) -> ConversationExport:
    """The conversation, its messages and its voice commands, as a JSON file to download."""
    summary = await _summary(runtime, principal, conversation_id, what="Conversation")
    messages = await list_messages(runtime.db, principal.scope, conversation_id)
    commands = await list_commands(runtime.db, principal.scope, conversation_id)
    filename = f"conversation-{_UNSAFE_FILENAME.sub('_', conversation_id)}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return ConversationExport(
        exported_at=utcnow(),
        conversation=ConversationOut.of(summary),
        messages=[MessageOut.of(message) for message in messages],
        commands=[VoiceCommandOut.of(command) for command in commands],
    )


@router.get("/voice-sessions", tags=["voice sessions"])
async def voice_sessions(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    status: Annotated[SessionStatus | None, Query(description="Only sessions in this state.")] = (
        None
    ),
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[VoiceSessionOut]:
    """The caller's voice sessions, newest first."""
    found = await list_session_summaries(
        runtime.db, principal.scope, limit=limit + 1, offset=offset, status=status
    )
    return page_of(found, limit, VoiceSessionOut.of)


@router.get("/voice-sessions/{session_id}", tags=["voice sessions"])
async def read_voice_session(
    session_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> VoiceSessionOut:
    """One voice session with its message and command counts."""
    return VoiceSessionOut.of(await _summary(runtime, principal, session_id, what="Voice session"))


@router.get("/voice-sessions/{session_id}/commands", tags=["voice sessions"])
async def voice_commands(
    session_id: str,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[VoiceCommandOut]:
    """What the assistant understood and did in a voice session, oldest first."""
    await _summary(runtime, principal, session_id, what="Voice session")
    # A session holds one command per user turn: few enough to read whole and page here.
    commands = await list_commands(runtime.db, principal.scope, session_id)
    page = commands[offset : offset + limit]
    return Page(
        data=[VoiceCommandOut.of(command) for command in page],
        has_more=len(commands) > offset + limit,
    )
