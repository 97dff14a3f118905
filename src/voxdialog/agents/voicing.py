"""An agent's speaking rate, pitch and volume, applied to whatever TTS chain speaks for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.resample import Resampler
from voxdialog.providers.base import (
    TTS,
    VoiceSettings,
    close_provider,
    tts_for_reply,
    warm_up,
)


def pitch_factor(semitones: float) -> float:
    """The frequency ratio of a shift by ``semitones`` (12 semitones = one octave = 2x)."""
    return float(2.0 ** (semitones / 12.0))


class VoicedTTS:
    """A TTS that speaks at an agent's rate, pitch and volume, relative to what the session asks.

    The session's ``speed`` (Realtime ``audio.output.speed``) and volume are multiplied by the
    agent's, so a client that slows the voice down still hears the agent's relative pace.

    Pitch works with any provider: the speech is asked for ``factor`` times slower and then
    played ``factor`` times faster (resampled), which raises every frequency by ``factor`` and
    leaves the duration as it was. Providers clamp speed to their own range; beyond it the
    pace changes a little along with the pitch. The wrapped chain is shared with other agents
    and sessions; this view holds no state of its own (each reply gets its own resampler).

    Args:
        inner: The TTS (or chain) that renders the audio.
        rate: Multiplies the requested speed (1.0 = unchanged).
        volume: Multiplies the requested volume (1.0 = unchanged).
        pitch: Semitones up (positive) or down (negative); 0 = unchanged.
    """

    def __init__(
        self, inner: TTS, *, rate: float = 1.0, volume: float = 1.0, pitch: float = 0.0
    ) -> None:
        self.inner = inner
        self.rate = rate
        self.volume = volume
        self.pitch = pitch
        self.info = inner.info

    def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        """Stream ``text`` from the wrapped TTS at the agent's rate, pitch and volume."""
        factor = pitch_factor(self.pitch)
        adjusted = replace(
            voice, speed=voice.speed * self.rate / factor, volume=voice.volume * self.volume
        )
        chunks = self.inner.synthesize(text, voice=adjusted)
        return chunks if factor == 1.0 else _raised(chunks, factor)

    def for_reply(self) -> TTS:
        """The wrapped chain's per-reply view (one voice per reply), voiced the same way."""
        view = tts_for_reply(self.inner)
        if view is self.inner:
            return self
        return VoicedTTS(view, rate=self.rate, volume=self.volume, pitch=self.pitch)

    async def warmup(self) -> None:
        """Warm up the wrapped TTS (``WarmsUp``)."""
        await warm_up(self.inner)


async def _raised(chunks: AsyncIterator[AudioChunk], factor: float) -> AsyncIterator[AudioChunk]:
    """``chunks`` played ``factor`` times faster: every frequency times ``factor``."""
    resampler: Resampler | None = None
    rate = 0
    try:
        async for chunk in chunks:
            if resampler is None:
                rate = chunk.sample_rate
                # Read as if recorded at rate * factor, written at rate: factor x as fast.
                resampler = Resampler(round(rate * factor), rate)
            pcm = resampler.process(chunk.pcm)
            if pcm:
                yield AudioChunk(pcm, rate)
        if resampler is not None and (tail := resampler.flush()):
            yield AudioChunk(tail, rate)
    finally:
        await close_provider(chunks)


def voiced(tts: TTS, voice: Mapping[str, Any]) -> TTS:
    """``tts`` at the rate, pitch and volume of an agent's stored ``voice`` (itself if neutral)."""
    rate = float(voice.get("rate", 1.0))
    volume = float(voice.get("volume", 1.0))
    pitch = float(voice.get("pitch", 0.0))
    if rate == 1.0 and volume == 1.0 and pitch == 0.0:
        return tts
    return VoicedTTS(tts, rate=rate, volume=volume, pitch=pitch)
