"""The TTS contract, checked on the fake and on Piper, plus a Piper -> Whisper round trip."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, cast

import numpy as np
import pytest

from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.base import TTS, ProviderError, ProviderUnavailable, VoiceSettings
from voxdialog.providers.chain import CallPolicy, FallbackTTS
from voxdialog.testing.fakes import FakeTTS
from voxdialog.testing.wer import word_error_rate

if TYPE_CHECKING:
    from pathlib import Path

    from voxdialog.providers.local.piper_tts import PiperTTS
    from voxdialog.providers.local.whisper_stt import WhisperSTT

SENTENCE = "The quick brown fox jumps over the lazy dog."
THREE_SENTENCES = "I added the task to your list. It is due on Friday. Do you want a reminder?"
# More sentences than a worker may buffer: a worker that ignored a closed stream would block.
NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
EIGHT_SENTENCES = " ".join(f"This is sentence number {n}." for n in NUMBERS)
DEFAULT = VoiceSettings()


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    from voxdialog.providers.local.piper_tts import PiperTTS

    return PiperTTS()


@pytest.fixture(
    params=[
        pytest.param("fake", id="fake"),
        pytest.param("chain", id="chain"),
        pytest.param("piper", id="piper", marks=pytest.mark.models),
    ],
)
def tts(request: pytest.FixtureRequest) -> TTS:
    if request.param in ("fake", "chain"):
        # A little pacing between chunks, as a real engine has, so cancelling can land mid-stream.
        fake = FakeTTS(chunk_delay_s=0.005)
        return fake if request.param == "fake" else FallbackTTS([fake], policy=CallPolicy())
    provider: TTS = request.getfixturevalue("piper")
    return provider


def stream_of(tts: TTS, text: str) -> AsyncGenerator[AudioChunk, None]:
    # The Protocol promises an AsyncIterator; implementations are async generators, which is
    # what lets a caller close one early.
    return cast("AsyncGenerator[AudioChunk, None]", tts.synthesize(text, voice=DEFAULT))


async def collect(tts: TTS, text: str, voice: VoiceSettings = DEFAULT) -> list[AudioChunk]:
    return [chunk async for chunk in tts.synthesize(text, voice=voice)]


def seconds(chunks: list[AudioChunk]) -> float:
    return sum(chunk.duration_ms for chunk in chunks) / 1000


def rms(chunks: list[AudioChunk]) -> float:
    samples = np.frombuffer(b"".join(c.pcm for c in chunks), dtype="<i2") / 32768.0
    return float(np.sqrt(np.mean(samples * samples)))


async def threads_started_since(before: set[threading.Thread]) -> set[threading.Thread]:
    """Wait (up to 10 s) for threads started after ``before`` to end; return any still alive."""
    for _ in range(200):
        alive = set(threading.enumerate()) - before
        if not alive:
            break
        await asyncio.sleep(0.05)
    return alive


# --- every implementation ----------------------------------------------------------------


async def test_a_sentence_streams_audible_chunks_at_the_declared_rate(tts: TTS) -> None:
    chunks = await collect(tts, SENTENCE)

    assert chunks
    assert all(chunk.pcm and chunk.sample_rate == tts.info.sample_rate for chunk in chunks)
    assert all(len(chunk.pcm) % 2 == 0 for chunk in chunks)
    assert 1.0 < seconds(chunks) < 8.0
    assert rms(chunks) > 0.02


async def test_audio_length_grows_in_proportion_to_the_text(tts: TTS) -> None:
    short = seconds(await collect(tts, "It is due on Friday."))
    long = seconds(await collect(tts, "It is due on Friday. " * 4))

    assert 2.5 < long / short < 6.0


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
async def test_empty_text_yields_nothing(tts: TTS, text: str) -> None:
    assert await collect(tts, text) == []


async def test_speaking_faster_gives_shorter_audio(tts: TTS) -> None:
    normal = seconds(await collect(tts, SENTENCE))
    fast = seconds(await collect(tts, SENTENCE, VoiceSettings(speed=1.5)))

    assert 0.5 < fast / normal < 0.85


async def test_volume_scales_the_audio(tts: TTS) -> None:
    # Piper samples its voice with random noise: eight sentences average a single take's
    # loudness out (one short line varied by up to 16 % between takes).
    loud = rms(await collect(tts, EIGHT_SENTENCES))
    quiet = rms(await collect(tts, EIGHT_SENTENCES, VoiceSettings(volume=0.5)))

    assert quiet / loud == pytest.approx(0.5, rel=0.15)


async def test_cancelling_mid_stream_stops_cleanly(tts: TTS) -> None:
    before = set(threading.enumerate())
    first_chunk = asyncio.Event()
    received: list[AudioChunk] = []

    async def listen() -> None:
        async with aclosing(stream_of(tts, EIGHT_SENTENCES)) as stream:
            async for chunk in stream:
                received.append(chunk)
                first_chunk.set()

    task = asyncio.create_task(listen())
    await first_chunk.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert 1 <= len(received) < 8
    assert await threads_started_since(before) == set()


async def test_closing_the_stream_early_releases_its_worker(tts: TTS) -> None:
    before = set(threading.enumerate())

    async with aclosing(stream_of(tts, EIGHT_SENTENCES)) as stream:
        async for _ in stream:
            break

    assert await threads_started_since(before) == set()
    assert await collect(tts, SENTENCE)  # the provider still works afterwards


async def test_concurrent_streams_each_get_their_own_audio(tts: TTS) -> None:
    short, long = await asyncio.gather(
        collect(tts, "Yes."), collect(tts, "It is due on Friday. " * 3)
    )

    assert 0 < seconds(short) < seconds(long) / 2


# --- Piper -------------------------------------------------------------------------------


@pytest.mark.models
@pytest.mark.parametrize("name", ["default", "en_US-joe-medium", "alloy", "Shimmer", "cedar"])
async def test_piper_answers_to_its_own_and_every_openai_voice_name(
    piper: PiperTTS, name: str
) -> None:
    assert await collect(piper, "Hello.", VoiceSettings(voice=name))


@pytest.mark.models
@pytest.mark.parametrize(
    "voice",
    [VoiceSettings(voice="en_GB-alan-low"), VoiceSettings(speed=0.0), VoiceSettings(volume=-1)],
)
async def test_piper_refuses_unknown_voices_and_bad_settings_without_retry(
    piper: PiperTTS, voice: VoiceSettings
) -> None:
    with pytest.raises(ProviderError) as excinfo:
        await collect(piper, SENTENCE, voice)

    assert excinfo.value.retryable is False


@pytest.mark.models
async def test_piper_streams_one_chunk_per_sentence(piper: PiperTTS) -> None:
    assert len(await collect(piper, THREE_SENTENCES)) == 3


@pytest.fixture(scope="module")
def whisper() -> WhisperSTT:
    from voxdialog.providers.local.whisper_stt import WhisperSTT

    return WhisperSTT()


@pytest.mark.models
@pytest.mark.parametrize(
    "text",
    [
        "Please remind me to call the dentist tomorrow morning at nine.",
        # Long enough to be cut at its commas: the pieces must still join into clear speech.
        "When you get to the station, take the second exit on the left, walk past the bakery, "
        "cross the bridge over the river, and keep going until you see a big red door.",
    ],
)
async def test_piper_round_trip_through_whisper_keeps_the_words(
    piper: PiperTTS, whisper: WhisperSTT, text: str
) -> None:
    chunks = await collect(piper, text)
    spoken = AudioChunk(b"".join(c.pcm for c in chunks), chunks[0].sample_rate)

    transcript = await whisper.transcribe(spoken)

    assert word_error_rate(text, transcript.text) <= 0.2, transcript.text


def test_missing_piper_voice_is_reported_as_unavailable(tmp_path: Path) -> None:
    from voxdialog.providers.local.piper_tts import PiperTTS

    with pytest.raises(ProviderUnavailable, match="not found"):
        PiperTTS(tmp_path / "en_US-nobody-low.onnx")


def test_long_sentences_are_cut_at_clauses_so_audio_starts_early() -> None:
    from voxdialog.providers.local.piper_tts import speech_pieces

    text = (
        "When you get to the station, take the second exit on the left, walk past the bakery "
        "and the flower shop, cross the bridge over the river, and then keep going until you "
        "see a big red door."
    )

    pieces = speech_pieces(text)

    assert len(pieces) > 1
    assert len(pieces[0]) <= 60
    assert " ".join(pieces) == text


@pytest.mark.parametrize("text", [SENTENCE, "Yes. It is.  Done!", "no punctuation " * 20])
def test_short_text_and_unbreakable_text_stay_whole(text: str) -> None:
    from voxdialog.providers.local.piper_tts import speech_pieces

    assert speech_pieces(text) == [" ".join(text.split())]


# --- the fake ----------------------------------------------------------------------------


async def test_fake_tts_records_texts_and_counts_finished_and_cancelled_streams() -> None:
    tts = FakeTTS(chunk_ms=100)
    await collect(tts, "Hello there.")
    async with aclosing(stream_of(tts, "Goodbye now.")) as stream:
        async for _ in stream:
            break

    assert tts.texts == ["Hello there.", "Goodbye now."]
    assert (tts.completed, tts.cancelled) == (1, 1)


async def test_fake_tts_fails_first_then_speaks() -> None:
    tts = FakeTTS(fail_first=1)

    with pytest.raises(ProviderError) as excinfo:
        await collect(tts, SENTENCE)

    assert excinfo.value.retryable is True
    assert await collect(tts, SENTENCE)


@pytest.mark.models
async def test_piper_says_a_short_line_again_from_memory(piper: PiperTTS) -> None:
    line = "Done, that is on your list."
    first = await collect(piper, line)
    hits = piper.phrases.hits
    again = await collect(piper, "  Done, that is  on your list. ")  # same words, other spacing
    assert piper.phrases.hits == hits + 1
    assert b"".join(c.pcm for c in again) == b"".join(c.pcm for c in first)
    slower = await collect(piper, line, VoiceSettings(speed=0.8))  # spoken otherwise: not reused
    assert piper.phrases.hits == hits + 1
    assert sum(len(c.pcm) for c in slower) > sum(len(c.pcm) for c in first)
