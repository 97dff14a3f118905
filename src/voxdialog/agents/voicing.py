"""An agent's speaking rate and volume, applied to whatever TTS chain speaks for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.base import TTS, VoiceSettings


class VoicedTTS:
    """A TTS that speaks at an agent's rate and volume, relative to what the session asks.

    The session's ``speed`` (Realtime ``audio.output.speed``) and volume are multiplied by the
    agent's, so a client that slows the voice down still hears the agent's relative pace.
    Every provider clamps the result to the range it accepts. The wrapped chain is shared
    with other agents and sessions; this view is cheap and holds no state of its own.

    Args:
        inner: The TTS (or chain) that renders the audio.
        rate: Multiplies the requested speed (1.0 = unchanged).
        volume: Multiplies the requested volume (1.0 = unchanged).
    """

    def __init__(self, inner: TTS, *, rate: float = 1.0, volume: float = 1.0) -> None:
        self.inner = inner
        self.rate = rate
        self.volume = volume
        self.info = inner.info

    def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        """Stream ``text`` from the wrapped TTS at the agent's rate and volume."""
        adjusted = replace(voice, speed=voice.speed * self.rate, volume=voice.volume * self.volume)
        return self.inner.synthesize(text, voice=adjusted)

    def for_reply(self) -> TTS:
        """The wrapped chain's per-reply view (one voice per reply), at the same rate."""
        for_reply = getattr(self.inner, "for_reply", None)
        if not callable(for_reply):
            return self
        return VoicedTTS(for_reply(), rate=self.rate, volume=self.volume)


def voiced(tts: TTS, voice: Mapping[str, Any]) -> TTS:
    """``tts`` at the rate and volume of an agent's stored ``voice`` (itself when neutral)."""
    rate = float(voice.get("rate", 1.0))
    volume = float(voice.get("volume", 1.0))
    if rate == 1.0 and volume == 1.0:
        return tts
    return VoicedTTS(tts, rate=rate, volume=volume)
