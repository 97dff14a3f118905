"""How the pipeline records what happened, without knowing where it is stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from voxdialog.brain.base import CommandOutcome, Scope


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
    status: str = "completed"  # "completed" | "cancelled" | "incomplete" | "failed"
    audio_ms: float | None = None
    timings: Mapping[str, float] = field(default_factory=dict)


class TurnRecorder(Protocol):
    """Stores sessions, messages and voice commands. Each call commits before returning."""

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
