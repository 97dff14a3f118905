"""What a session is configured to do: the pipeline's view of the client's settings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from voxdialog.brain.base import BrainTurn, HistoryMessage
from voxdialog.pipeline.turns import TurnConfig
from voxdialog.providers.base import ToolSpec, VoiceSettings


@dataclass(slots=True)
class SessionConfig:
    """What the client configured (the pipeline's view of ``session.update``)."""

    turn: TurnConfig = field(default_factory=TurnConfig)
    vad_enabled: bool = True
    create_response: bool = True
    interrupt_response: bool = True
    speculative_stt: bool = True
    transcribe_input: bool = False
    language: str | None = None
    transcription_prompt: str | None = None
    output_audio: bool = True
    #: Transcribe the turn while the person is still talking (VoxDialog's own event).
    partial_transcripts: bool = False
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    instructions: str = ""
    #: Tools the client declared (Realtime ``session.tools``); the LLM may call them.
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class ResponseOptions:
    """Per-response overrides from ``response.create``."""

    output_audio: bool | None = None
    instructions: str | None = None
    voice: VoiceSettings | None = None
    in_conversation: bool = True
    tools: tuple[ToolSpec, ...] | None = None
    #: Speak exactly this text instead of asking the brain (an agent's greeting).
    say: str | None = None


def with_turn(config: SessionConfig, **changes: Any) -> SessionConfig:
    """A copy of ``config`` with turn parameters changed."""
    return replace(config, turn=replace(config.turn, **changes))


def brain_turn(
    text: str,
    history: tuple[HistoryMessage, ...],
    config: SessionConfig,
    options: ResponseOptions,
) -> BrainTurn:
    """What the brain is asked: ``text`` with the conversation so far and the settings.

    Client tool calls and their outputs that came after the last user message go in
    ``followups``, after it; the rest is history.
    """
    last_user = max((n for n, m in enumerate(history) if m.role == "user"), default=None)
    return BrainTurn(
        text=text,
        history=history if last_user is None else history[:last_user],
        instructions=config.instructions if options.instructions is None else options.instructions,
        client_tools=config.tools if options.tools is None else options.tools,
        followups=() if last_user is None else history[last_user + 1 :],
    )
