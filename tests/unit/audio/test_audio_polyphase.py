"""The live microphone's resampler (24 kHz or 8 kHz to 16 kHz) that keeps the GIL."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from voxdialog.audio.polyphase import PolyphaseStream, supports
from voxdialog.audio.resample import Resampler


def tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def stream(samples: np.ndarray, from_rate: int, to_rate: int, piece: int) -> np.ndarray:
    s = PolyphaseStream(from_rate, to_rate)
    parts = [s.process(samples[i : i + piece]) for i in range(0, len(samples), piece)]
    return np.concatenate([*parts, s.flush()])


def db(x: np.ndarray, ref: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) / np.sqrt(np.mean(ref**2))))


@pytest.mark.parametrize(("from_rate", "to_rate"), [(24_000, 16_000), (8_000, 16_000)])
@pytest.mark.parametrize("piece", [1, 77, 480, 24_000])
def test_output_length_and_alignment_match_libsoxr(
    from_rate: int, to_rate: int, piece: int
) -> None:
    speechlike = tone(300, from_rate) + tone(1200, from_rate) * 0.5 + tone(2500, from_rate) * 0.2
    ours = stream(speechlike, from_rate, to_rate, piece)
    theirs = soxr.resample(speechlike, from_rate, to_rate, quality="VHQ")
    assert len(ours) == len(theirs)
    inner = slice(100, -100)  # both filters start and end from silence
    error = ours[inner] - theirs[inner]
    assert db(error, theirs[inner]) < -40  # same signal, same time: no delay, no offset


def test_passband_is_flat_and_aliases_are_gone() -> None:
    for freq in (200, 1000, 4000, 6500):
        ref = tone(freq, 24_000)
        assert abs(db(stream(ref, 24_000, 16_000, 480)[200:-200], ref)) < 0.1
    # Above the new Nyquist rate (8 kHz) a tone must not fold back into the speech band.
    ref = tone(10_000, 24_000)
    assert db(stream(ref, 24_000, 16_000, 480)[200:-200], ref) < -60


def test_flush_readies_the_stream_for_the_next_one() -> None:
    samples = tone(440, 24_000, 0.3)
    s = PolyphaseStream(24_000, 16_000)
    first = np.concatenate([s.process(samples), s.flush()])
    second = np.concatenate([s.process(samples), s.flush()])
    assert np.array_equal(first, second)


def test_only_small_ratios_take_the_filter() -> None:
    assert supports(24_000, 16_000)
    assert supports(8_000, 16_000)
    assert not supports(22_050, 24_000)  # TTS output: libsoxr
    assert not supports(16_000, 16_000)


def test_a_live_resampler_uses_the_filter_and_keeps_pcm16() -> None:
    pcm = tone(440, 24_000, 0.1).astype("<i2").tobytes()
    live, plain = Resampler(24_000, 16_000, live=True), Resampler(24_000, 16_000)
    a = np.frombuffer(live.process(pcm) + live.flush(), "<i2").astype(np.float32)
    b = np.frombuffer(plain.process(pcm) + plain.flush(), "<i2").astype(np.float32)
    assert len(a) == len(b) == 1600
    assert db(a[50:-50] - b[50:-50], b[50:-50]) < -40
