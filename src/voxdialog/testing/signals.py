"""PCM16 test signals (tones, silence) and a WAV reader."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from voxdialog.audio.formats import PIPELINE_RATE, SAMPLE_WIDTH, AudioChunk


def _samples(ms: float, rate: int) -> int:
    if ms < 0:
        raise ValueError("duration must not be negative")
    return round(ms * rate / 1000)


def tone(
    ms: float, *, freq: float = 220.0, rate: int = PIPELINE_RATE, amplitude: float = 0.3
) -> bytes:
    """A sine tone as mono PCM16.

    Args:
        ms: duration in milliseconds.
        freq: frequency in hertz.
        rate: sample rate.
        amplitude: peak level, 1.0 = full scale.
    """
    t = np.arange(_samples(ms, rate), dtype=np.float64) / rate
    wave_ = amplitude * np.sin(2 * np.pi * freq * t)
    return np.round(np.clip(wave_, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def silence(ms: float, *, rate: int = PIPELINE_RATE) -> bytes:
    """Digital silence as mono PCM16."""
    return bytes(_samples(ms, rate) * SAMPLE_WIDTH)


def load_wav_pcm16(path: Path | str) -> AudioChunk:
    """Read a mono 16-bit PCM WAV file.

    Raises:
        ValueError: the file is not mono 16-bit PCM.
    """
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != SAMPLE_WIDTH:
            raise ValueError(f"{path}: need mono 16-bit PCM")
        return AudioChunk(wav.readframes(wav.getnframes()), wav.getframerate())
