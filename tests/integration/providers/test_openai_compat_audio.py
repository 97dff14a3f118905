"""OpenAICompatSTT, OpenAICompatTTS and ElevenLabsTTS against the fake server."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.wav import read_wav
from voxdialog.providers.base import (
    TTS,
    ProviderError,
    ProviderTimeout,
    VoiceSettings,
)
from voxdialog.providers.elevenlabs import DEFAULT_VOICE_ID, ElevenLabsTTS
from voxdialog.providers.openai_compat.stt import OpenAICompatSTT
from voxdialog.providers.openai_compat.tts import OpenAICompatTTS
from voxdialog.settings import ProviderSettings
from voxdialog.testing.fake_openai import SPEECH_RATE, FakeOpenAIServer, Fault
from voxdialog.testing.signals import tone

CLIP = AudioChunk(tone(1200.0, freq=300.0), 16_000)
TEXT = "Hello from the remote voice."


def settings(fake: FakeOpenAIServer, **overrides: Any) -> ProviderSettings:
    fields: dict[str, Any] = {
        "kind": "openai_compatible",
        "base_url": fake.url,
        "model": "whisper-1",
        "timeout_s": 5.0,
    }
    fields.update(overrides)
    return ProviderSettings.model_validate(fields)


@pytest.fixture
async def stt(fake: FakeOpenAIServer) -> AsyncIterator[OpenAICompatSTT]:
    provider = OpenAICompatSTT(settings(fake, stage="stt", api_key="sk-stt"), name="remote-stt")
    yield provider
    await provider.aclose()


@pytest.fixture
async def tts(fake: FakeOpenAIServer) -> AsyncIterator[OpenAICompatTTS]:
    provider = OpenAICompatTTS(settings(fake, stage="tts", model="tts-1"), name="remote-tts")
    yield provider
    await provider.aclose()


@pytest.fixture
async def eleven(fake: FakeOpenAIServer) -> AsyncIterator[ElevenLabsTTS]:
    provider = ElevenLabsTTS(
        ProviderSettings(
            kind="elevenlabs", stage="tts", base_url=fake.origin, api_key="xi-secret", timeout_s=5.0
        ),
        name="eleven",
    )
    yield provider
    await provider.aclose()


async def speak(tts: TTS, text: str = TEXT, **voice: Any) -> list[AudioChunk]:
    return [chunk async for chunk in tts.synthesize(text, voice=VoiceSettings(**voice))]


def pcm_of(chunks: list[AudioChunk]) -> bytes:
    return b"".join(c.pcm for c in chunks)


def expected_tone(text: str, *, speed: float = 1.0, rate: int = SPEECH_RATE) -> bytes:
    """The speech the fake sends for ``text`` (a tone of 40 ms per character, at least 200)."""
    return tone(max(200.0, len(text) * 40.0) / speed, freq=440.0, rate=rate)


# --- STT ---------------------------------------------------------------------------------


async def test_stt_sends_the_clip_as_wav_and_returns_the_transcript(
    fake: FakeOpenAIServer, stt: OpenAICompatSTT
) -> None:
    fake.transcript = "Please book a table for two."
    transcript = await stt.transcribe(CLIP, language="en", prompt="restaurant")
    assert transcript.text == "Please book a table for two."
    assert transcript.is_final
    assert transcript.language == "en"
    sent = fake.requests_to("/audio/transcriptions")[-1]
    assert sent.file is not None
    assert read_wav(sent.file) == CLIP
    assert sent.file_name == "audio.wav"
    assert sent.api_key == "sk-stt"
    assert sent.form == {
        "model": ["whisper-1"],
        "response_format": ["json"],
        "language": ["en"],
        "prompt": ["restaurant"],
    }


async def test_stt_with_word_timestamps_asks_for_verbose_json_and_keeps_the_words(
    fake: FakeOpenAIServer, stt: OpenAICompatSTT
) -> None:
    fake.transcript = "Turn on the lights."
    transcript = await stt.transcribe(CLIP, word_timestamps=True)
    assert fake.requests[-1].form["response_format"] == ["verbose_json"]
    assert transcript.duration_s == pytest.approx(1.2)
    assert transcript.language == "english"
    assert len(transcript.segments) == 1
    words = transcript.segments[0].words
    assert [w.word for w in words] == ["Turn", "on", "the", "lights."]
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (400, False)])
async def test_stt_errors_say_whether_retry_helps(
    fake: FakeOpenAIServer, stt: OpenAICompatSTT, status: int, retryable: bool
) -> None:
    fake.inject(Fault(status=status, retry_after="1"))
    with pytest.raises(ProviderError) as excinfo:
        await stt.transcribe(CLIP)
    assert (excinfo.value.status, excinfo.value.retryable) == (status, retryable)
    assert excinfo.value.retry_after_s == (1.0 if retryable else None)


async def test_stt_error_messages_never_show_the_key(
    fake: FakeOpenAIServer, stt: OpenAICompatSTT
) -> None:
    fake.inject(Fault(status=401, message="Incorrect API key sk-stt"))
    with pytest.raises(ProviderError, match="Incorrect API key") as excinfo:
        await stt.transcribe(CLIP)
    assert "sk-stt" not in str(excinfo.value)


async def test_stt_that_never_answers_raises_provider_timeout(fake: FakeOpenAIServer) -> None:
    fake.inject(Fault(hang=True))
    stt = OpenAICompatSTT(settings(fake, stage="stt", timeout_s=0.5), name="slow")
    try:
        with pytest.raises(ProviderTimeout):
            await stt.transcribe(CLIP)
    finally:
        await stt.aclose()
    assert await fake.wait_for_disconnect()


# --- OpenAI-compatible TTS ---------------------------------------------------------------


async def test_tts_streams_24k_pcm_in_pieces_of_at_most_100_ms(
    fake: FakeOpenAIServer, tts: OpenAICompatTTS
) -> None:
    chunks = await speak(tts, voice="nova", speed=1.25)
    assert {c.sample_rate for c in chunks} == {SPEECH_RATE}
    assert len(chunks) > 3
    assert all(c.duration_ms <= 100.0 for c in chunks)
    assert pcm_of(chunks) == expected_tone(TEXT, speed=1.25)
    assert fake.requests[-1].json == {
        "model": "tts-1",
        "input": TEXT,
        "voice": "nova",
        "response_format": "pcm",
        "speed": 1.25,
    }


async def test_tts_voice_from_settings_wins_and_volume_scales_the_samples(
    fake: FakeOpenAIServer,
) -> None:
    tts = OpenAICompatTTS(settings(fake, stage="tts", voice="onyx"), name="fixed-voice")
    try:
        chunks = await speak(tts, voice="nova", volume=0.5)
    finally:
        await tts.aclose()
    assert fake.requests[-1].json["voice"] == "onyx"
    got = np.frombuffer(pcm_of(chunks), dtype="<i2").astype(np.float64)
    full = np.frombuffer(expected_tone(TEXT), dtype="<i2").astype(np.float64)
    assert np.max(np.abs(got - full * 0.5)) <= 1.0


async def test_tts_of_empty_text_sends_nothing(
    fake: FakeOpenAIServer, tts: OpenAICompatTTS
) -> None:
    assert await speak(tts, text="   ") == []
    assert fake.requests == []


async def test_tts_dropped_mid_stream_raises_a_retryable_error_after_some_audio(
    fake: FakeOpenAIServer, tts: OpenAICompatTTS
) -> None:
    fake.inject(Fault(drop_after=3))
    received: list[AudioChunk] = []

    async def listen() -> None:
        async for chunk in tts.synthesize(TEXT, voice=VoiceSettings()):
            received.append(chunk)

    with pytest.raises(ProviderError) as excinfo:
        await listen()
    assert excinfo.value.retryable
    assert 0 < sum(c.duration_ms for c in received) <= 150.0  # three 50 ms pieces at most


async def test_tts_rate_limit_carries_retry_after_ms(
    fake: FakeOpenAIServer, tts: OpenAICompatTTS
) -> None:
    fake.inject(Fault(status=429, retry_after_ms=250))
    with pytest.raises(ProviderError) as excinfo:
        await speak(tts)
    assert (excinfo.value.status, excinfo.value.retry_after_s) == (429, 0.25)


async def test_tts_without_audio_in_time_raises_provider_timeout(fake: FakeOpenAIServer) -> None:
    fake.inject(Fault(first_token_delay_s=3.0))
    tts = OpenAICompatTTS(settings(fake, stage="tts", timeout_s=0.4), name="slow")
    try:
        with pytest.raises(ProviderTimeout):
            await speak(tts)
    finally:
        await tts.aclose()
    assert await fake.wait_for_disconnect()


async def test_cancelling_speech_closes_the_connection(
    fake: FakeOpenAIServer, tts: OpenAICompatTTS
) -> None:
    fake.chunk_delay_s = 0.05
    stream = tts.synthesize(TEXT * 10, voice=VoiceSettings())
    first = await anext(stream)
    assert first.pcm
    await stream.aclose()  # type: ignore[attr-defined]
    assert await fake.wait_for_disconnect()


# --- ElevenLabs ----------------------------------------------------------------------------


async def test_elevenlabs_calls_the_stream_path_with_its_key_header_and_pcm_24k(
    fake: FakeOpenAIServer, eleven: ElevenLabsTTS
) -> None:
    chunks = await speak(eleven, voice="voice123", speed=1.1)
    sent = fake.requests[-1]
    assert sent.path == "/v1/text-to-speech/voice123/stream"
    assert sent.query == {"output_format": "pcm_24000"}
    assert sent.api_key == "xi-secret"
    assert "xi-api-key" not in sent.headers  # recorded apart, never in headers
    assert "authorization" not in sent.headers
    assert sent.json == {
        "text": TEXT,
        "model_id": "eleven_flash_v2_5",
        "voice_settings": {"speed": 1.1},
    }
    assert {c.sample_rate for c in chunks} == {24_000}
    assert pcm_of(chunks) == expected_tone(TEXT, speed=1.1)


async def test_elevenlabs_default_voice_and_speed_clamped_to_its_range(
    fake: FakeOpenAIServer, eleven: ElevenLabsTTS
) -> None:
    await speak(eleven, speed=3.0)
    sent = fake.requests[-1]
    assert sent.path == f"/v1/text-to-speech/{DEFAULT_VOICE_ID}/stream"
    assert sent.json["voice_settings"] == {"speed": 1.2}


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (401, False)])
async def test_elevenlabs_errors_map_like_the_others(
    fake: FakeOpenAIServer, eleven: ElevenLabsTTS, status: int, retryable: bool
) -> None:
    fake.inject(Fault(status=status, message="quota_exceeded"))
    with pytest.raises(ProviderError, match="quota_exceeded") as excinfo:
        await speak(eleven)
    assert (excinfo.value.status, excinfo.value.retryable) == (status, retryable)


async def test_elevenlabs_that_never_answers_raises_provider_timeout(
    fake: FakeOpenAIServer,
) -> None:
    fake.inject(Fault(hang=True))
    eleven = ElevenLabsTTS(
        ProviderSettings(kind="elevenlabs", stage="tts", base_url=fake.origin, timeout_s=0.4),
        name="eleven",
    )
    try:
        with pytest.raises(ProviderTimeout):
            await speak(eleven)
    finally:
        await eleven.aclose()
    assert fake.requests[-1].api_key is None  # no key configured, no header sent


async def test_two_providers_speak_at_once_without_mixing_their_audio(
    fake: FakeOpenAIServer, tts: OpenAICompatTTS, eleven: ElevenLabsTTS
) -> None:
    fake.chunk_delay_s = 0.005
    first, second = await asyncio.gather(speak(tts, "short"), speak(eleven, TEXT))
    assert pcm_of(first) == expected_tone("short")
    assert pcm_of(second) == expected_tone(TEXT)
