"""The VAD contract, checked on the fake and on Silero."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from voxdialog.providers.base import VAD, BatchedVADStream, ProviderError, VADStream
from voxdialog.testing.fakes import FakeVAD
from voxdialog.testing.signals import load_wav_pcm16, silence, tone

if TYPE_CHECKING:
    from conftest import SpeechClip

FRAME_BYTES = 512 * 2
SPEECH_CLIPS = [
    "misc/jfk.wav",
    "librispeech_test_clean/1089-134691-0001.wav",
    "ljspeech/LJ001-0005.wav",
]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("fake", id="fake"),
        pytest.param("silero", id="silero", marks=pytest.mark.models),
    ],
)
def vad(request: pytest.FixtureRequest) -> VAD:
    if request.param == "fake":
        return FakeVAD()
    from voxdialog.providers.local.silero_vad import SileroVAD

    return SileroVAD()


@pytest.fixture(scope="module")
def silero() -> VAD:
    from voxdialog.providers.local.silero_vad import SileroVAD

    return SileroVAD()


def frames(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def probabilities(stream: VADStream, pcm: bytes) -> list[float]:
    return [stream.speech_probability(frame) for frame in frames(pcm)]


def white_noise(ms: int, *, rms: float, seed: int = 0) -> bytes:
    samples = np.random.default_rng(seed).normal(0.0, rms, ms * 16)
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def test_streams_take_512_sample_frames(vad: VAD) -> None:
    assert vad.open_stream(16_000).frame_samples == 512


@pytest.mark.parametrize(
    "pcm",
    [
        pytest.param(silence(1000), id="silence"),
        pytest.param(tone(1000), id="tone"),
        pytest.param(tone(1000, amplitude=1.0, freq=3000), id="full-scale-tone"),
        pytest.param(white_noise(1000, rms=0.5), id="loud-noise"),
        pytest.param(b"\xff\x7f" * 16_000, id="dc-at-full-scale"),
    ],
)
def test_probability_stays_between_zero_and_one(vad: VAD, pcm: bytes) -> None:
    stream = vad.open_stream(16_000)

    probs = probabilities(stream, pcm)

    assert probs
    assert all(0.0 <= p <= 1.0 for p in probs)


@pytest.mark.parametrize("clip_name", SPEECH_CLIPS)
def test_recorded_speech_scores_high_and_the_silence_around_it_low(
    vad: VAD, speech_manifest: dict[str, SpeechClip], clip_name: str
) -> None:
    speech = load_wav_pcm16(speech_manifest[clip_name].path).pcm
    stream = vad.open_stream(16_000)

    lead = probabilities(stream, silence(1024))  # 32 frames exactly
    during = probabilities(stream, speech)
    after = probabilities(stream, silence(1024))

    assert max(lead) < 0.1
    assert max(during) > 0.9
    assert np.mean(np.array(during) > 0.5) > 0.4
    assert max(after[-10:]) < 0.1  # the speech state decays within a second of silence


def test_streams_do_not_share_state(vad: VAD, speech_manifest: dict[str, SpeechClip]) -> None:
    first = load_wav_pcm16(speech_manifest["misc/jfk.wav"].path).pcm
    second = load_wav_pcm16(speech_manifest["ljspeech/LJ001-0005.wav"].path).pcm
    alone = probabilities(vad.open_stream(16_000), second)

    a, b = vad.open_stream(16_000), vad.open_stream(16_000)
    interleaved = []
    for frame_a, frame_b in zip(frames(first), frames(second), strict=False):
        a.speech_probability(frame_a)
        interleaved.append(b.speech_probability(frame_b))

    assert interleaved == pytest.approx(alone[: len(interleaved)], abs=1e-6)


def test_silero_scores_streams_in_one_batch_as_it_scores_them_alone(
    silero: VAD, speech_manifest: dict[str, SpeechClip]
) -> None:
    clips = [load_wav_pcm16(clip.path).pcm for clip in speech_manifest.values()][:6]
    alone = [probabilities(silero.open_stream(16_000), pcm) for pcm in clips]
    streams = [silero.open_stream(16_000) for _ in clips]
    assert all(isinstance(stream, BatchedVADStream) for stream in streams)
    # Streams of different lengths, fed in two rounds: state carries over between calls.
    work = [frames(pcm) for pcm in clips]
    half = [len(f) // 2 for f in work]
    batch = streams[0].batch  # type: ignore[attr-defined]
    first = batch.score_streams([(s, f[:h]) for s, f, h in zip(streams, work, half, strict=True)])
    rest = batch.score_streams([(s, f[h:]) for s, f, h in zip(streams, work, half, strict=True)])
    together = [a + b for a, b in zip(first, rest, strict=True)]
    for got, want in zip(together, alone, strict=True):
        assert got == pytest.approx(want, abs=1e-5)


def test_silero_batch_refuses_a_broken_frame_before_scoring_any(silero: VAD) -> None:
    good, bad = silero.open_stream(16_000), silero.open_stream(16_000)
    speech = tone(64)
    batch = good.batch  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="512"):
        batch.score_streams([(good, frames(speech)), (bad, [b"\x00" * 10])])
    # Nothing advanced: the good stream scores as a fresh one.
    assert probabilities(good, speech) == probabilities(silero.open_stream(16_000), speech)


def test_reset_makes_a_stream_behave_like_a_fresh_one(
    vad: VAD, speech_manifest: dict[str, SpeechClip]
) -> None:
    speech = load_wav_pcm16(speech_manifest["misc/jfk.wav"].path).pcm
    fresh = probabilities(vad.open_stream(16_000), speech[: 100 * FRAME_BYTES])
    stream = vad.open_stream(16_000)
    probabilities(stream, speech[50 * FRAME_BYTES :])

    stream.reset()

    assert probabilities(stream, speech[: 100 * FRAME_BYTES]) == pytest.approx(fresh, abs=1e-6)


@pytest.mark.parametrize("size", [0, 511 * 2, 513 * 2, FRAME_BYTES - 1, 2 * FRAME_BYTES])
def test_a_frame_of_the_wrong_size_raises_value_error(vad: VAD, size: int) -> None:
    stream = vad.open_stream(16_000)

    with pytest.raises(ValueError, match="512"):
        stream.speech_probability(bytes(size))


@pytest.mark.parametrize("rate", [8_000, 24_000, 48_000])
def test_streams_at_other_rates_are_refused_for_good(vad: VAD, rate: int) -> None:
    with pytest.raises(ProviderError) as excinfo:
        vad.open_stream(rate)

    assert excinfo.value.retryable is False


@pytest.mark.models
@pytest.mark.parametrize(
    "pcm",
    [
        pytest.param(tone(3000, freq=1000), id="1kHz-tone"),
        pytest.param(white_noise(3000, rms=0.1), id="white-noise"),
    ],
)
def test_silero_does_not_take_steady_tones_or_noise_for_speech(silero: VAD, pcm: bytes) -> None:
    probs = np.array(probabilities(silero.open_stream(16_000), pcm))

    assert np.mean(probs > 0.5) == 0.0


@pytest.mark.models
@pytest.mark.parametrize("label", ["keyboard_typing", "vacuum_cleaner", "telephone_ring"])
def test_silero_does_not_take_household_sounds_for_speech(
    silero: VAD, shared_data: Path, label: str
) -> None:
    clips = sorted((shared_data / "events" / label).glob("*.wav"))[:3]
    assert clips
    for path in clips:
        probs = np.array(probabilities(silero.open_stream(16_000), load_wav_pcm16(path).pcm))

        assert np.mean(probs > 0.5) <= 0.05, path.name


def test_missing_silero_model_file_is_reported_as_unavailable(tmp_path: Path) -> None:
    from voxdialog.providers.base import ProviderUnavailable
    from voxdialog.providers.local.silero_vad import SileroVAD

    with pytest.raises(ProviderUnavailable, match="not found"):
        SileroVAD(tmp_path / "missing.onnx")
