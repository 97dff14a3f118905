"""VoicedTTS: an agent's rate, pitch and volume over any TTS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from voxdialog.agents.voicing import VoicedTTS, pitch_factor, voiced
from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.base import ProviderInfo, VoiceSettings

RATE = 22_050
TONE_HZ = 200.0
BASE_S = 1.0


class ToneTTS:
    """Speaks a 200 Hz tone lasting one second at speed 1.0 (longer when slower), in pieces."""

    info = ProviderInfo(name="tone", model="tone", streaming=True, sample_rate=RATE)

    def __init__(self) -> None:
        self.voices: list[VoiceSettings] = []

    async def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        self.voices.append(voice)
        samples = round(RATE * BASE_S / voice.speed)
        t = np.arange(samples) / RATE
        pcm = (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2").tobytes()
        for start in range(0, len(pcm), 4410):
            yield AudioChunk(pcm[start : start + 4410], RATE)


async def spoken(tts: VoicedTTS) -> tuple[np.ndarray, int]:
    chunks = [c async for c in tts.synthesize("Hello.", voice=VoiceSettings())]
    rates = {c.sample_rate for c in chunks}
    assert len(rates) == 1
    return np.frombuffer(b"".join(c.pcm for c in chunks), dtype="<i2"), rates.pop()


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("semitones", [12.0, 7.0, -12.0, -5.0])
async def test_pitch_moves_every_frequency_and_keeps_the_duration(semitones: float) -> None:
    inner = ToneTTS()
    samples, rate = await spoken(VoicedTTS(inner, pitch=semitones))
    factor = pitch_factor(semitones)
    assert rate == RATE
    assert inner.voices[-1].speed == pytest.approx(1 / factor)
    assert dominant_hz(samples, rate) == pytest.approx(TONE_HZ * factor, rel=0.02)
    assert len(samples) / rate == pytest.approx(BASE_S, rel=0.02)


async def test_rate_and_volume_multiply_what_the_session_asks() -> None:
    inner = ToneTTS()
    tts = VoicedTTS(inner, rate=1.5, volume=0.5)
    async for _ in tts.synthesize("Hi.", voice=VoiceSettings(speed=1.2, volume=0.8)):
        pass
    assert inner.voices[-1].speed == pytest.approx(1.8)
    assert inner.voices[-1].volume == pytest.approx(0.4)


def test_a_neutral_voice_adds_no_wrapper() -> None:
    inner = ToneTTS()
    assert voiced(inner, {"voice": "nova", "rate": 1.0, "pitch": 0.0}) is inner
    assert isinstance(voiced(inner, {"pitch": 2.0}), VoicedTTS)
