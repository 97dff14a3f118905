"""Keeps the context cache honest: a stored message invalidates its conversation's entry."""

from __future__ import annotations

from voxdialog.brain.base import CommandOutcome
from voxdialog.context.cache import ContextCache
from voxdialog.pipeline.recorder import MessageRecord, SessionInfo, TurnRecorder
from voxdialog.security.principal import Scope


def context_key(scope: Scope, conversation_id: str) -> str:
    """The cache key of a conversation: tenant and user first, so keys never collide."""
    return f"tenant:{scope.tenant_id}:user:{scope.user_id}:conv:{conversation_id}"


class ContextRecorder:
    """A `TurnRecorder` that writes through ``inner`` and then drops the cached context.

    Write-invalidate (not write-update) because a stored message can later be rewritten
    (truncation after a barge-in, deletion); the next reader reloads from the database.
    """

    def __init__(self, inner: TurnRecorder, cache: ContextCache) -> None:
        self._inner = inner
        self._cache = cache
        self._keys: dict[str, str] = {}

    async def session_started(self, info: SessionInfo) -> None:
        """Record the start and remember the session's cache key."""
        await self._inner.session_started(info)
        self._keys[info.session_id] = context_key(info.scope, info.session_id)

    async def session_ended(self, session_id: str) -> None:
        """Record the end (the cached context stays until its TTL, for a quick resume)."""
        await self._inner.session_ended(session_id)
        self._keys.pop(session_id, None)

    async def message(self, record: MessageRecord) -> None:
        """Store the message, then invalidate (only after the commit)."""
        await self._inner.message(record)
        self._invalidate(record.session_id)

    async def message_deleted(self, session_id: str, item_id: str) -> None:
        """Delete the message, then invalidate."""
        await self._inner.message_deleted(session_id, item_id)
        self._invalidate(session_id)

    async def command(
        self, session_id: str, item_id: str, text: str, outcome: CommandOutcome
    ) -> None:
        """Commands are not part of the context: pass through."""
        await self._inner.command(session_id, item_id, text, outcome)

    def _invalidate(self, session_id: str) -> None:
        key = self._keys.get(session_id)
        if key is not None:
            self._cache.invalidate(key)
