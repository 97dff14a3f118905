"""How the pipeline records what happened, without knowing where it is stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from voxdialog.brain.base import CommandOutcome
from voxdialog.pipeline.conversation import ItemView
from voxdialog.security.principal import Scope

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A voice session as it starts."""

    session_id: str
    scope: Scope
    model: str
    agent: str = "default"
    client: str = "realtime"  # "realtime" | "cli" | "rest"


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One conversation message with its per-stage timings (milliseconds)."""

    session_id: str
    item_id: str
    role: str  # "user" | "assistant" | "system"
    text: str
    status: str = "completed"  # "completed" | "cancelled" | "incomplete" | "failed" | "in_progress"
    audio_ms: float | None = None
    timings: Mapping[str, float] = field(default_factory=dict)


class TurnRecorder(Protocol):
    """Stores sessions, messages and voice commands. Each call commits before returning.

    The session acknowledges to its client only what has been stored: every message is
    recorded before the event that reports it (item added, transcription completed,
    response done) is sent.
    """

    async def session_started(self, info: SessionInfo) -> None:
        """A session began."""
        ...

    async def session_ended(self, session_id: str) -> None:
        """A session ended (normally or not)."""
        ...

    async def message(self, record: MessageRecord) -> None:
        """Insert or replace (by ``item_id``) a message."""
        ...

    async def message_deleted(self, session_id: str, item_id: str) -> None:
        """A client deleted an item from the conversation."""
        ...

    async def command(
        self, session_id: str, item_id: str, text: str, outcome: CommandOutcome
    ) -> None:
        """A voice command the brain handled (``item_id`` is the user's message)."""
        ...


class SessionRecords:
    """One session's way to its recorder: records views, and a storage failure is logged,
    never raised (the conversation goes on without that row).

    Args:
        recorder: Where records go; None records nothing (a one-off turn, a test).
    """

    def __init__(self, recorder: TurnRecorder | None) -> None:
        self._recorder = recorder

    async def started(self, info: SessionInfo) -> None:
        """The session began (or now speaks as another agent)."""
        if self._recorder is not None:
            await self._safely(self._recorder.session_started(info), info.session_id)

    async def ended(self, session_id: str) -> None:
        """The session is over; runs to the end even while its task is being cancelled."""
        if self._recorder is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._recorder.session_ended(session_id))

    async def message(self, session_id: str, item: ItemView) -> None:
        """Store a message with text (others are not messages yet)."""
        if self._recorder is None or item.text is None:
            return
        record = MessageRecord(
            session_id=session_id,
            item_id=item.id,
            role=item.role,
            text=item.text,
            status=item.status,
            audio_ms=item.audio_ms or None,
            timings=dict(item.timings),
        )
        await self._safely(self._recorder.message(record), session_id)

    async def pending(self, session_id: str, item: ItemView) -> None:
        """A spoken turn was committed and is being transcribed: store it, text to follow."""
        await self.message(session_id, replace(item, text="", status="in_progress"))

    async def failed(self, session_id: str, item: ItemView) -> None:
        """A spoken turn could not be transcribed: its stored row says so."""
        await self.message(session_id, replace(item, text="", status="failed"))

    async def deleted(self, session_id: str, item_id: str) -> None:
        """The client deleted an item."""
        if self._recorder is not None:
            await self._safely(self._recorder.message_deleted(session_id, item_id), session_id)

    async def command(
        self, session_id: str, user: ItemView | None, outcome: CommandOutcome
    ) -> None:
        """What the brain did for the user turn ``user`` (nothing without one)."""
        if self._recorder is not None and user is not None:
            call = self._recorder.command(session_id, user.id, user.text or "", outcome)
            await self._safely(call, session_id)

    @staticmethod
    async def _safely(call: Coroutine[Any, Any, None], session_id: str) -> None:
        try:
            await call
        except Exception:
            log.exception("recording failed", extra={"session_id": session_id})
