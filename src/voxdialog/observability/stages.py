"""Stage timers that sit between pipeline parts without changing what flows through them."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator

from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.base import TTS, VoiceSettings


class FirstAudioTimer:
    """A TTS for one reply that times its first synthesis: sentence in, first audio out.

    It passes every call and chunk through unchanged; ``first_chunk_ms`` is set by the first
    ``synthesize`` call that yields audio (a sentence that makes no sound does not count).

    Args:
        tts: The TTS the reply would use.
    """

    def __init__(self, tts: TTS) -> None:
        self._tts = tts
        self.info = tts.info
        #: Milliseconds from the first sentence given to the TTS to its first audio chunk.
        self.first_chunk_ms: float | None = None

    async def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        """The wrapped TTS's audio for ``text``, timing the first call."""
        timed = self.first_chunk_ms is None
        started = time.perf_counter()
        stream = self._tts.synthesize(text, voice=voice)
        try:
            async for chunk in stream:
                if timed and chunk.pcm:
                    timed = False
                    self.first_chunk_ms = (time.perf_counter() - started) * 1000
                yield chunk
        finally:
            # Closed early (a barge-in): stop the wrapped stream now, not at garbage collection.
            if isinstance(stream, AsyncGenerator):
                await stream.aclose()
