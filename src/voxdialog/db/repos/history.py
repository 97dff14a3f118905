"""A conversation's recent messages as brain history (the context cache's loader)."""

from __future__ import annotations

from voxdialog.brain.base import HistoryMessage
from voxdialog.db.engine import Database
from voxdialog.db.repos.sessions import list_messages
from voxdialog.security.principal import Scope

_SPOKEN_ROLES = ("user", "assistant")


async def recent_history(
    db: Database, scope: Scope, conversation_id: str, *, limit: int = 20
) -> list[HistoryMessage]:
    """The last ``limit`` user/assistant messages of a conversation, oldest first.

    Only the scope's own conversation is read; anything else yields an empty history.
    """
    messages = await list_messages(db, scope, conversation_id)
    spoken = [
        HistoryMessage(role=m.role, text=m.text)
        for m in messages
        if m.role in _SPOKEN_ROLES and m.text and m.status != "failed"
    ]
    return spoken[-limit:]


def parse_context_key(key: str) -> tuple[Scope, str]:
    """Invert `voxdialog.context.recorder.context_key`.

    Raises:
        ValueError: The key is not a conversation context key.
    """
    parts = key.split(":")
    if len(parts) != 6 or parts[0] != "tenant" or parts[2] != "user" or parts[4] != "conv":
        raise ValueError("not a conversation context key")
    return Scope(tenant_id=parts[1], user_id=parts[3]), parts[5]
