"""The STT contract, checked on the fake and on Whisper tiny.en."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import soxr

from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.base import STT, ProviderError, ProviderUnavailable
from voxdialog.providers.chain import CallPolicy, FallbackSTT
from voxdialog.testing.fakes import FakeSTT
from voxdialog.testing.signals import load_wav_pcm16, silence, tone
from voxdialog.testing.wer import word_error_rate

if TYPE_CHECKING:
    from conftest import SpeechClip
    from voxdialog.providers.local.whisper_stt import WhisperSTT

#: Clean read speech: Whisper tiny.en stays well under this on each clip (measured 0 to 0.11).
CLEAN_SPEECH_WER = 0.35
CLEAN_CLIPS = [
    "misc/jfk.wav",
    "librispeech_test_clean/1089-134686-0000.wav",
    "librispeech_test_clean/1089-134691-0001.wav",
    "ljspeech/LJ001-0002.wav",
]


@pytest.fixture(scope="module")
def whisper() -> WhisperSTT:
    from voxdialog.providers.local.whisper_stt import WhisperSTT

    return WhisperSTT()


@pytest.fixture(
    params=[
        pytest.param("fake", id="fake"),
        pytest.param("chain", id="chain"),
        pytest.param("whisper", id="whisper", marks=pytest.mark.models),
    ],
)
def stt(request: pytest.FixtureRequest) -> STT:
    if request.param in ("fake", "chain"):
        fake = FakeSTT(["he could wait no longer"] * 5)
        return fake if request.param == "fake" else FallbackSTT([fake], policy=CallPolicy())
    provider: STT = request.getfixturevalue("whisper")
    return provider


def clip_of(speech_manifest: dict[str, SpeechClip], name: str) -> tuple[AudioChunk, str]:
    entry = speech_manifest[name]
    return load_wav_pcm16(entry.path), entry.transcript


def resampled(clip: AudioChunk, rate: int) -> AudioChunk:
    samples = np.frombuffer(clip.pcm, dtype="<i2").astype(np.float32) / 32768.0
    out = soxr.resample(samples, clip.sample_rate, rate)
    return AudioChunk((np.clip(out, -1.0, 1.0) * 32767).astype("<i2").tobytes(), rate)


# --- every implementation ----------------------------------------------------------------


async def test_transcript_is_final_and_reports_the_clip_duration(
    stt: STT, speech_manifest: dict[str, SpeechClip]
) -> None:
    clip, _ = clip_of(speech_manifest, "librispeech_test_clean/1089-134691-0000.wav")

    transcript = await stt.transcribe(clip)

    assert transcript.is_final
    assert transcript.duration_s == pytest.approx(clip.duration_ms / 1000)
    assert transcript.text == transcript.text.strip()
    assert word_error_rate("he could wait no longer", transcript.text) == 0.0


async def test_concurrent_transcriptions_all_complete(
    stt: STT, speech_manifest: dict[str, SpeechClip]
) -> None:
    clip, reference = clip_of(speech_manifest, "librispeech_test_clean/1089-134691-0000.wav")

    transcripts = await asyncio.gather(*(stt.transcribe(clip) for _ in range(3)))

    assert [word_error_rate(reference, t.text) for t in transcripts] == [0.0, 0.0, 0.0]


async def test_segments_lie_inside_the_clip_and_carry_its_text(
    stt: STT, speech_manifest: dict[str, SpeechClip]
) -> None:
    clip, _ = clip_of(speech_manifest, "librispeech_test_clean/1089-134691-0000.wav")

    transcript = await stt.transcribe(clip)

    assert transcript.segments
    assert all(0.0 <= s.start <= s.end <= transcript.duration_s + 0.05 for s in transcript.segments)
    assert "".join(s.text for s in transcript.segments).strip() == transcript.text


# --- Whisper -----------------------------------------------------------------------------


@pytest.mark.models
@pytest.mark.parametrize("name", CLEAN_CLIPS)
async def test_whisper_transcribes_clean_recorded_speech_within_the_wer_bound(
    whisper: WhisperSTT, speech_manifest: dict[str, SpeechClip], name: str
) -> None:
    clip, reference = clip_of(speech_manifest, name)

    transcript = await whisper.transcribe(clip)

    assert word_error_rate(reference, transcript.text) <= CLEAN_SPEECH_WER, transcript.text
    assert transcript.language == "en"


@pytest.mark.models
@pytest.mark.parametrize("rate", [8_000, 24_000])
async def test_whisper_resamples_clips_at_other_rates(
    whisper: WhisperSTT, speech_manifest: dict[str, SpeechClip], rate: int
) -> None:
    clip, reference = clip_of(speech_manifest, "librispeech_test_clean/1089-134691-0001.wav")

    transcript = await whisper.transcribe(resampled(clip, rate))

    assert word_error_rate(reference, transcript.text) <= CLEAN_SPEECH_WER, transcript.text
    assert transcript.duration_s == pytest.approx(clip.duration_ms / 1000, abs=0.01)


@pytest.mark.models
@pytest.mark.parametrize(
    "pcm",
    [
        pytest.param(silence(3000), id="digital-silence"),
        pytest.param(
            (np.random.default_rng(1).normal(0, 0.003, 48_000) * 32767).astype("<i2").tobytes(),
            id="faint-noise",
        ),
        pytest.param(silence(50), id="50ms"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_whisper_hears_nothing_in_silence_or_a_too_short_clip(
    whisper: WhisperSTT, pcm: bytes
) -> None:
    transcript = await whisper.transcribe(AudioChunk(pcm, 16_000))

    assert transcript.text == ""
    assert transcript.segments == ()


@pytest.mark.models
async def test_whisper_times_each_word_when_asked(
    whisper: WhisperSTT, speech_manifest: dict[str, SpeechClip]
) -> None:
    clip, reference = clip_of(speech_manifest, "misc/jfk.wav")

    transcript = await whisper.transcribe(clip, word_timestamps=True)

    words = [w for s in transcript.segments for w in s.words]
    assert word_error_rate(reference, " ".join(w.word for w in words)) <= CLEAN_SPEECH_WER
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(0.0 <= w.start <= w.end <= transcript.duration_s for w in words)


@pytest.mark.models
async def test_whisper_model_errors_become_non_retryable_provider_errors(
    whisper: WhisperSTT, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(whisper._model, "transcribe", broken)
    monkeypatch.setattr(whisper._window, "transcribe", lambda audio: None)  # the full path

    with pytest.raises(ProviderError, match="decoder exploded") as excinfo:
        await whisper.transcribe(AudioChunk(tone(1000), 16_000))

    assert excinfo.value.retryable is False


@pytest.mark.models
async def test_whisper_drops_unconfident_segments_it_thinks_are_not_speech(
    whisper: WhisperSTT, monkeypatch: pytest.MonkeyPatch
) -> None:
    def segment(text: str, *, no_speech_prob: float, avg_logprob: float) -> SimpleNamespace:
        return SimpleNamespace(
            start=0.0, end=1.0, text=text, words=None,
            no_speech_prob=no_speech_prob, avg_logprob=avg_logprob,
        )  # fmt: skip

    def scripted(*args: Any, **kwargs: Any) -> Any:
        segments = [
            segment(" Turn off the lights.", no_speech_prob=0.1, avg_logprob=-0.2),
            segment(" Thank you.", no_speech_prob=0.9, avg_logprob=-1.4),  # invented on silence
            segment(" Please.", no_speech_prob=0.9, avg_logprob=-0.3),  # quiet but confident
            segment(" Now.", no_speech_prob=0.3, avg_logprob=-1.5),  # unsure but speech-like
        ]
        return iter(segments), SimpleNamespace(language="en")

    monkeypatch.setattr(whisper._model, "transcribe", scripted)
    monkeypatch.setattr(whisper._window, "transcribe", lambda audio: None)  # the full path

    transcript = await whisper.transcribe(AudioChunk(tone(1000), 16_000))

    assert transcript.text == "Turn off the lights. Please. Now."
    assert len(transcript.segments) == 3


@pytest.mark.models
async def test_a_cancelled_whisper_call_frees_its_slot_for_the_next_one(
    whisper: WhisperSTT, speech_manifest: dict[str, SpeechClip]
) -> None:
    clip, reference = clip_of(speech_manifest, "librispeech_test_clean/1089-134691-0000.wav")
    abandoned = asyncio.create_task(whisper.transcribe(clip))
    await asyncio.sleep(0.05)  # let it take the only slot and start its thread

    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned

    transcript = await asyncio.wait_for(whisper.transcribe(clip), timeout=60)
    assert word_error_rate(reference, transcript.text) == 0.0


def test_missing_whisper_model_dir_is_reported_as_unavailable(tmp_path: Path) -> None:
    from voxdialog.providers.local.whisper_stt import WhisperSTT

    with pytest.raises(ProviderUnavailable, match="not found"):
        WhisperSTT(tmp_path)


# --- the fake ----------------------------------------------------------------------------


async def test_fake_stt_returns_its_script_in_order_then_empty_text() -> None:
    stt = FakeSTT(["first", "second"])
    clip = AudioChunk(tone(500), 16_000)

    texts = [(await stt.transcribe(clip)).text for _ in range(3)]

    assert texts == ["first", "second", ""]
    assert stt.clips == [clip, clip, clip]


async def test_fake_stt_fails_the_first_calls_with_provider_errors() -> None:
    stt = FakeSTT(["hello"], fail_first=2, retryable=False)
    clip = AudioChunk(tone(500), 16_000)

    for _ in range(2):
        with pytest.raises(ProviderError) as excinfo:
            await stt.transcribe(clip)
        assert excinfo.value.retryable is False

    assert (await stt.transcribe(clip)).text == "hello"
    assert len(stt.clips) == 3


async def test_fake_stt_delay_is_an_await_that_a_timeout_can_cut() -> None:
    stt = FakeSTT(["late"], delay_s=30.0)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(stt.transcribe(AudioChunk(tone(500), 16_000)), timeout=0.01)

    assert len(stt.clips) == 1


async def test_whisper_errors_on_the_short_window_path_become_provider_errors(
    whisper: WhisperSTT, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(audio: object) -> None:
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(whisper._window, "transcribe", broken)
    with pytest.raises(ProviderError) as failure:
        await whisper.transcribe(AudioChunk(tone(1000), 16_000))
    assert not failure.value.retryable


async def test_whisper_short_window_and_full_path_agree_on_recorded_speech(
    whisper: WhisperSTT, speech_manifest: dict[str, SpeechClip]
) -> None:
    clip = load_wav_pcm16(speech_manifest["librispeech_test_clean/1089-134691-0001.wav"].path)
    fast = await whisper.transcribe(clip)
    full = await whisper.transcribe(clip, word_timestamps=True)
    assert word_error_rate(full.text, fast.text) <= 0.1
