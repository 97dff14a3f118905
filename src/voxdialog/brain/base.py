"""The Brain Protocol: a user's words in, a streamed spoken answer (and what was done) out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from voxdialog.providers.base import ToolCall, ToolSpec
from voxdialog.security.principal import Scope


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """A message of the conversation so far, as text."""

    role: str  # "user" | "assistant" | "system" | "tool"
    text: str
    #: An assistant message that called tools (its text may be empty).
    tool_calls: tuple[ToolCall, ...] = ()
    #: A ``tool`` message answers the call with this id.
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class BrainTurn:
    """One user turn handed to a brain."""

    text: str
    history: tuple[HistoryMessage, ...] = ()
    instructions: str = ""
    #: Tools the client runs itself (Realtime ``session.tools``); calls go back to it.
    client_tools: tuple[ToolSpec, ...] = ()
    #: Tool calls and their outputs that came after the user's message (a client tool's
    #: result, before the client asked for the next response).
    followups: tuple[HistoryMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyText:
    """A piece of the spoken answer (may be a whole sentence or a fragment)."""

    text: str


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What the brain understood and did; recorded as a voice command."""

    intent: str
    confidence: float
    success: bool
    entities: Mapping[str, object] = field(default_factory=dict)
    error: str | None = None
    processing_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ClientToolCall:
    """The model called a tool the client declared: the client runs it and answers."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class LLMUnavailable:
    """The language model failed; the person still hears an answer (a fallback or an apology).

    Yielded before the turn's ``CommandOutcome``, so the transport can tell its client.
    """

    error: str


BrainEvent = ReplyText | CommandOutcome | ClientToolCall | LLMUnavailable


class BrainSession(Protocol):
    """Per-conversation brain state (e.g. a pending confirmation)."""

    def respond(self, turn: BrainTurn) -> AsyncIterator[BrainEvent]:
        """Stream the answer to ``turn``. At most one ``CommandOutcome`` per turn.

        Cancelling the iteration abandons the answer; side effects already committed stay.
        """
        ...


class Brain(Protocol):
    """A kind of brain; opens one session per conversation."""

    name: str

    def open_session(self, scope: Scope) -> BrainSession:
        """Start a conversation for ``scope``."""
        ...
