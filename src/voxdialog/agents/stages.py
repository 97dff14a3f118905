"""What a session needs from its agent: the stages to run and how to take turns."""

from __future__ import annotations

from dataclasses import dataclass

from voxdialog.brain.base import Brain
from voxdialog.pipeline.turns import TurnConfig
from voxdialog.providers.base import STT, TTS
from voxdialog.settings import TurnSettings

DEFAULT_AGENT = "default"


class UnknownAgentError(LookupError):
    """The agent does not exist in the caller's tenant (answered like a missing object)."""


@dataclass(frozen=True, slots=True)
class AgentStages:
    """The resolved agent of one session.

    Attributes:
        agent_id: The stored agent's id, or ``"default"`` for the server's settings.
        name: Its display name.
        stt: Speech-to-text (chain) for this agent.
        tts: Text-to-speech (chain) for this agent, at its speaking rate and volume.
        brain: The brain that answers (LLM chain with tools, or the built-in assistant).
        turns: Turn-taking settings (the server's, overridden by the agent's).
        voice: The TTS voice name, if the agent picks one (the session's default voice).
        greeting: Spoken when the session starts, if set.
    """

    agent_id: str
    name: str
    stt: STT
    tts: TTS
    brain: Brain
    turns: TurnSettings
    voice: str | None = None
    greeting: str | None = None


def turn_config(turns: TurnSettings) -> TurnConfig:
    """The pipeline's turn taking from an agent's (or the server's) settings."""
    return TurnConfig(
        threshold=turns.threshold,
        prefix_padding_ms=turns.prefix_padding_ms,
        silence_duration_ms=turns.silence_duration_ms,
        min_speech_ms=turns.min_speech_ms,
        max_utterance_ms=int(turns.max_utterance_s * 1000),
        interrupt_min_speech_ms=turns.interrupt_min_speech_ms,
    )
