"""Transcriber: one turn's audio in, its transcript out, with the session's language and prompt.

It also decides what a finished turn's transcript is when a speculative run (started when the
person fell silent) may already have it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from voxdialog.audio.formats import PIPELINE_RATE, AudioChunk
from voxdialog.clock import Clock
from voxdialog.pipeline.conversation import Item
from voxdialog.providers.base import STT, ProviderError, STTPriority, Transcript, stt_busy

Attempt = asyncio.Task[Transcript | ProviderError]
"""A transcription under way that never raises: its error is its result."""


class Transcriber:
    """Transcribes clips of one session (PCM16 at the pipeline rate).

    Args:
        stt: The speech-to-text stage (a provider or a chain); ``stt`` may be replaced later.
        clock: Times the wait for a turn's transcript.
    """

    def __init__(self, stt: STT, *, clock: Clock) -> None:
        self.stt = stt
        self._clock = clock
        self.language: str | None = None
        self.prompt: str | None = None

    @property
    def busy(self) -> bool:
        """Whether the speech model is transcribing something now (optional partials wait)."""
        return stt_busy(self.stt)

    async def transcribe(self, clip: bytes, priority: STTPriority = STTPriority.LIVE) -> Transcript:
        """The clip's transcript. Raises ``ProviderError``."""
        return await self.stt.transcribe(
            AudioChunk(clip, PIPELINE_RATE),
            language=self.language,
            prompt=self.prompt,
            priority=priority,
        )

    async def attempt(self, clip: bytes, priority: STTPriority) -> Transcript | ProviderError:
        """Like ``transcribe`` but never raises: speculative work must not fail its task group."""
        try:
            return await self.transcribe(clip, priority)
        except ProviderError as e:
            return e
        except Exception as e:
            return ProviderError(f"transcription crashed: {type(e).__name__}", retryable=False)

    async def final(
        self, clip: bytes, speculative: Attempt | None, *, closing: Callable[[], bool]
    ) -> Transcript:
        """The turn's transcript: the speculative one if it succeeded, else one clean attempt.

        Raises:
            ProviderError: the clean attempt failed.
        """
        try:
            result = await speculative if speculative else None
        except asyncio.CancelledError:
            # The speculation was cancelled under us (not this task): transcribe afresh.
            if speculative is None or not speculative.cancelled() or closing():
                raise
            result = None
        if result is None or isinstance(result, ProviderError):
            return await self.transcribe(clip)
        return result

    async def fill(
        self, item: Item, speech: bytes, speculative: Attempt | None, *, closing: Callable[[], bool]
    ) -> str:
        """Transcribe a user turn into ``item`` (its text and STT timings); returns the text.

        Raises:
            ProviderError: no transcript could be had.
        """
        started = self._clock.now()
        transcript = await self.final(speech, speculative, closing=closing)
        item.text = transcript.text
        item.timings = {
            **item.timings,
            "stt_wait_ms": round((self._clock.now() - started) * 1000, 1),
            "speculative": 1.0 if speculative else 0.0,
        }
        return transcript.text
