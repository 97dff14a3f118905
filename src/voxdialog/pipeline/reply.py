"""Reply: one spoken (or written) answer: brain -> sentence chunker -> TTS, cancellable."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from voxdialog.audio.formats import AudioChunk
from voxdialog.brain.base import (
    BrainEvent,
    BrainSession,
    BrainTurn,
    ClientToolCall,
    CommandOutcome,
    LLMUnavailable,
    ReplyText,
)
from voxdialog.pipeline.sentences import SentenceChunker
from voxdialog.providers.base import TTS, VoiceSettings


@dataclass(frozen=True, slots=True)
class TextOut:
    """Text of the answer, released when its audio starts (or at once for text replies)."""

    text: str


@dataclass(frozen=True, slots=True)
class AudioOut:
    """A piece of the answer's audio."""

    chunk: AudioChunk


@dataclass(frozen=True, slots=True)
class OutcomeOut:
    """What the brain did."""

    outcome: CommandOutcome


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    """The model called one of the client's tools."""

    call: ClientToolCall


@dataclass(frozen=True, slots=True)
class LLMDown:
    """The language model failed; the answer goes on without it (fallback or apology)."""

    error: str


ReplyEvent = TextOut | AudioOut | OutcomeOut | ToolCallOut | LLMDown


@dataclass(slots=True)
class _Span:
    text: str
    audio_start_ms: float
    audio_ms: float = 0.0


@dataclass(slots=True)
class ReplyProgress:
    """What a reply has delivered so far; read it after cancelling to store the right text."""

    spans: list[_Span] = field(default_factory=list)
    text_sent: str = ""
    audio_ms: float = 0.0
    brain_first_ms: float | None = None
    tts_first_audio_ms: float | None = None

    def text_heard(self, audio_end_ms: float) -> str:
        """The text spoken in the first ``audio_end_ms`` of audio (cut at a word boundary)."""
        heard: list[str] = []
        for span in self.spans:
            if audio_end_ms >= span.audio_start_ms + span.audio_ms:
                heard.append(span.text)
                continue
            played = audio_end_ms - span.audio_start_ms
            if played > 0 and span.audio_ms > 0:
                words = span.text.split()
                keep = int(len(words) * played / span.audio_ms)
                if keep:
                    heard.append(" ".join(words[:keep]))
            break
        return " ".join(heard)


class ScriptedLine:
    """A brain session that says one fixed text (an agent's greeting), whatever the turn."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def respond(self, turn: BrainTurn) -> AsyncIterator[BrainEvent]:
        """The text, as one piece; no command outcome (nothing was asked)."""
        yield ReplyText(self.text)


async def run_reply(
    brain: BrainSession,
    turn: BrainTurn,
    *,
    tts: TTS | None,
    voice: VoiceSettings,
    progress: ReplyProgress,
) -> AsyncIterator[ReplyEvent]:
    """Produce one answer. With ``tts=None`` the answer is text only.

    Sentences are synthesized one after another as the brain produces them; the text of a
    sentence is released just before its first audio so transcript and audio stay aligned.
    Cancel the iteration to stop everything at once.
    """
    started = time.perf_counter()
    chunker = SentenceChunker()
    async for event in brain.respond(turn):
        if isinstance(event, CommandOutcome):
            yield OutcomeOut(event)
            continue
        if isinstance(event, ClientToolCall):
            yield ToolCallOut(event)
            continue
        if isinstance(event, LLMUnavailable):
            yield LLMDown(event.error)
            continue
        assert isinstance(event, ReplyText)
        if progress.brain_first_ms is None:
            progress.brain_first_ms = (time.perf_counter() - started) * 1000
        for sentence in chunker.push(event.text):
            async for out in _speak(sentence, tts=tts, voice=voice, progress=progress, t0=started):
                yield out
    for sentence in chunker.flush():
        async for out in _speak(sentence, tts=tts, voice=voice, progress=progress, t0=started):
            yield out


async def _speak(
    sentence: str, *, tts: TTS | None, voice: VoiceSettings, progress: ReplyProgress, t0: float
) -> AsyncIterator[ReplyEvent]:
    text = sentence if not progress.text_sent else " " + sentence
    if tts is None:
        progress.text_sent += text
        progress.spans.append(_Span(sentence, progress.audio_ms))
        yield TextOut(text)
        return
    span = _Span(sentence, progress.audio_ms)
    released = False
    async for chunk in tts.synthesize(sentence, voice=voice):
        if not chunk.pcm:
            continue
        if not released:
            released = True
            progress.spans.append(span)
            progress.text_sent += text
            if progress.tts_first_audio_ms is None:
                progress.tts_first_audio_ms = (time.perf_counter() - t0) * 1000
            yield TextOut(text)
        span.audio_ms += chunk.duration_ms
        progress.audio_ms += chunk.duration_ms
        yield AudioOut(chunk)
