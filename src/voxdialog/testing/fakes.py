"""Deterministic VAD, STT and TTS fakes that satisfy the provider Protocols."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable

import numpy as np

from voxdialog.audio.formats import PIPELINE_RATE, SAMPLE_WIDTH, AudioChunk
from voxdialog.providers.base import (
    ProviderError,
    ProviderInfo,
    STTPriority,
    Transcript,
    TranscriptSegment,
    VoiceSettings,
)
from voxdialog.testing.signals import tone


class FakeVADStream:
    """Energy detector: probability is ``e / (e + threshold)`` for the frame's mean energy ``e``.

    So digital silence scores 0, a frame exactly at ``speech_rms`` scores 0.5, and a generated
    tone (amplitude 0.3, RMS 0.21) scores above 0.99.
    """

    def __init__(self, *, frame_samples: int, speech_rms: float) -> None:
        self.frame_samples = frame_samples
        self._threshold = speech_rms * speech_rms
        #: Frames scored and resets seen, for assertions.
        self.frames = 0
        self.resets = 0

    def speech_probability(self, frame: bytes) -> float:
        """Probability in [0, 1] from the frame's energy.

        Raises:
            ValueError: the frame is not ``frame_samples`` PCM16 samples long.
        """
        if len(frame) != self.frame_samples * SAMPLE_WIDTH:
            raise ValueError(
                f"need frames of {self.frame_samples} PCM16 samples, got {len(frame)} bytes"
            )
        self.frames += 1
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64) / 32768.0
        energy = float(np.mean(samples * samples))
        return energy / (energy + self._threshold)

    def reset(self) -> None:
        """Count the reset (the detector itself has no state)."""
        self.resets += 1


class FakeVAD:
    """A VAD whose streams call loud frames speech and quiet frames silence.

    Args:
        speech_rms: RMS level (1.0 = full scale) that scores exactly 0.5.
        frame_samples: samples per frame, 512 like Silero.
    """

    def __init__(self, *, speech_rms: float = 0.01, frame_samples: int = 512) -> None:
        self.info = ProviderInfo(
            name="fake-vad", model="energy", streaming=True, sample_rate=PIPELINE_RATE
        )
        self._speech_rms = speech_rms
        self._frame_samples = frame_samples
        #: Every stream handed out, in order.
        self.streams: list[FakeVADStream] = []

    def open_stream(self, sample_rate: int) -> FakeVADStream:
        """A fresh stream; like Silero, only the pipeline rate is accepted.

        Raises:
            ProviderError: ``sample_rate`` is not 16000 (not retryable).
        """
        if sample_rate != PIPELINE_RATE:
            raise ProviderError(f"fake VAD runs at {PIPELINE_RATE} Hz", retryable=False)
        stream = FakeVADStream(frame_samples=self._frame_samples, speech_rms=self._speech_rms)
        self.streams.append(stream)
        return stream


class FakeSTT:
    """Returns scripted transcripts in order, then empty ones.

    Args:
        transcripts: the texts to return, one per successful call.
        delay_s: asynchronous delay before each answer (or failure).
        fail_first: the first this-many calls raise ``ProviderError``.
        retryable: whether those failures say a retry can help.
    """

    def __init__(
        self,
        transcripts: Iterable[str] | None = None,
        *,
        delay_s: float = 0.0,
        fail_first: int = 0,
        retryable: bool = True,
    ) -> None:
        self.info = ProviderInfo(name="fake-stt", model="scripted", sample_rate=PIPELINE_RATE)
        self._script = deque(transcripts or ())
        self._delay_s = delay_s
        self._failures_left = fail_first
        self._retryable = retryable
        #: Every clip received, failed calls included, in order.
        self.clips: list[AudioChunk] = []

    async def transcribe(
        self,
        clip: AudioChunk,
        *,
        language: str | None = None,
        prompt: str | None = None,
        word_timestamps: bool = False,
        priority: STTPriority = STTPriority.LIVE,
    ) -> Transcript:
        """Record ``clip``, wait ``delay_s``, then fail or return the next scripted text.

        Raises:
            ProviderError: while ``fail_first`` failures remain.
        """
        self.clips.append(clip)
        if self._delay_s > 0:
            await asyncio.sleep(self._delay_s)
        if self._failures_left > 0:
            self._failures_left -= 1
            raise ProviderError("fake STT failure", retryable=self._retryable)
        text = self._script.popleft() if self._script else ""
        duration_s = clip.duration_ms / 1000.0
        segments = (TranscriptSegment(start=0.0, end=duration_s, text=text),) if text else ()
        return Transcript(
            text=text, language=language or "en", duration_s=duration_s, segments=segments
        )


class FakeTTS:
    """Speaks a sine tone whose length is proportional to the text, in fixed-size chunks.

    Args:
        sample_rate: output rate.
        ms_per_char: audio per character of (stripped) text at speed 1.0.
        chunk_ms: audio per yielded chunk.
        delay_s: asynchronous delay before the first chunk (time to first audio).
        chunk_delay_s: asynchronous delay between chunks (to cancel mid-stream in tests).
        fail_first: the first this-many calls raise a retryable ``ProviderError``.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 22_050,
        ms_per_char: float = 60.0,
        chunk_ms: float = 200.0,
        delay_s: float = 0.0,
        chunk_delay_s: float = 0.0,
        fail_first: int = 0,
    ) -> None:
        self.info = ProviderInfo(
            name="fake-tts", model="sine", streaming=True, sample_rate=sample_rate
        )
        self._rate = sample_rate
        self._ms_per_char = ms_per_char
        self._chunk_bytes = max(1, round(chunk_ms * sample_rate / 1000)) * SAMPLE_WIDTH
        self._delay_s = delay_s
        self._chunk_delay_s = chunk_delay_s
        self._failures_left = fail_first
        #: Every text asked for (empty ones too) and its voice, in order.
        self.texts: list[str] = []
        self.voices: list[VoiceSettings] = []
        #: Streams that ran to the end, and streams closed or cancelled before it.
        self.completed = 0
        self.cancelled = 0

    async def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        """Yield ``len(text.strip()) * ms_per_char / speed`` ms of tone in ``chunk_ms`` pieces.

        Raises:
            ProviderError: while ``fail_first`` failures remain, or for a speed <= 0.
        """
        self.texts.append(text)
        self.voices.append(voice)
        if self._failures_left > 0:
            self._failures_left -= 1
            raise ProviderError("fake TTS failure", retryable=True)
        if voice.speed <= 0:
            raise ProviderError("speed must be positive", retryable=False)
        spoken = text.strip()
        if not spoken:
            return
        if self._delay_s > 0:
            await asyncio.sleep(self._delay_s)
        ms = len(spoken) * self._ms_per_char / voice.speed
        pcm = tone(ms, freq=440.0, rate=self._rate, amplitude=min(1.0, 0.3 * voice.volume))
        finished = False
        try:
            for offset in range(0, len(pcm), self._chunk_bytes):
                if offset and self._chunk_delay_s > 0:
                    await asyncio.sleep(self._chunk_delay_s)
                yield AudioChunk(pcm[offset : offset + self._chunk_bytes], self._rate)
            finished = True
        finally:
            if finished:
                self.completed += 1
            else:
                self.cancelled += 1
