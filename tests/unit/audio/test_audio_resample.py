import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.resample import Resampler, resample
from voxdialog.audio.wav import read_wav

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
RATE_PAIRS = [
    (8_000, 16_000),
    (24_000, 16_000),
    (16_000, 24_000),
    (22_050, 24_000),
    (22_050, 8_000),
    (44_100, 16_000),
]


@pytest.fixture(scope="module")
def speech() -> AudioChunk:
    return read_wav(
        (DATA / "speech" / "librispeech_test_other" / "367-130732-0001.wav").read_bytes()
    )


def samples(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def tone(freq: float, rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 10_000).astype("<i2").tobytes()


def peak_frequency(pcm: bytes, rate: int) -> float:
    x = samples(pcm)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def stream(resampler: Resampler, pcm: bytes, cuts: list[int]) -> bytes:
    bounds = [0, *sorted(cuts), len(pcm)]
    out = [resampler.process(pcm[a:b]) for a, b in itertools.pairwise(bounds)]
    return b"".join(out) + resampler.flush()


def test_same_rate_returns_the_input_unchanged(speech: AudioChunk) -> None:
    assert resample(speech.pcm, 16_000, 16_000) == speech.pcm
    r = Resampler(16_000, 16_000)
    assert stream(r, speech.pcm, [1, 333, 1001]) == speech.pcm


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_one_shot_keeps_the_duration_within_two_samples(src: int, dst: int) -> None:
    pcm = tone(300, src, 1.37)
    out = resample(pcm, src, dst)
    assert abs(len(out) // 2 - len(pcm) // 2 * dst / src) <= 2


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_streaming_keeps_the_duration_within_two_samples(src: int, dst: int) -> None:
    pcm = tone(300, src, 1.37)
    out = stream(Resampler(src, dst), pcm, list(range(0, len(pcm), 641)))
    assert abs(len(out) // 2 - len(pcm) // 2 * dst / src) <= 2


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_a_tone_keeps_its_pitch(src: int, dst: int) -> None:
    out = resample(tone(1_000, src, 1.0), src, dst)
    assert peak_frequency(out, dst) == pytest.approx(1_000, abs=2)


def test_content_above_the_new_nyquist_is_removed() -> None:
    out = samples(resample(tone(6_000, 16_000, 1.0), 16_000, 8_000))
    steady = out[200:-200]  # the filter rings at the abrupt start and end of the tone
    assert np.sqrt(np.mean(steady**2)) < 5  # from an RMS of about 7000


def test_streaming_matches_one_shot_on_real_speech(speech: AudioChunk) -> None:
    one_shot = samples(resample(speech.pcm, 16_000, 24_000))
    cuts = np.random.default_rng(7).integers(0, len(speech.pcm), size=40).tolist()
    streamed = samples(stream(Resampler(16_000, 24_000), speech.pcm, cuts))
    assert abs(len(streamed) - len(one_shot)) <= 2
    n = min(len(streamed), len(one_shot))
    residual = np.sqrt(np.mean((streamed[:n] - one_shot[:n]) ** 2))
    assert residual < 0.01 * np.sqrt(np.mean(one_shot**2))


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, 3_200), max_size=12))
def test_any_split_of_the_input_gives_the_same_stream(cuts: list[int]) -> None:
    pcm = tone(440, 22_050, 0.145)[:3_201]  # odd length: half a sample dangles at the end
    whole = stream(Resampler(22_050, 8_000), pcm, [])
    assert stream(Resampler(22_050, 8_000), pcm, cuts) == whole


def test_flush_readies_the_resampler_for_an_identical_second_stream(speech: AudioChunk) -> None:
    r = Resampler(16_000, 8_000)
    first = stream(r, speech.pcm, [1_000, 5_001])
    assert stream(r, speech.pcm, [1_000, 5_001]) == first


def test_flush_with_no_input_returns_nothing() -> None:
    assert Resampler(24_000, 16_000).flush() == b""


@pytest.mark.parametrize(("src", "dst"), [(0, 16_000), (16_000, -1)])
def test_non_positive_rates_are_refused(src: int, dst: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(src, dst)
    with pytest.raises(ValueError, match="positive"):
        resample(b"\x00\x00", src, dst)


def test_one_shot_refuses_half_a_sample() -> None:
    with pytest.raises(ValueError, match="even"):
        resample(b"\x00\x00\x00", 16_000, 8_000)
