"""FallbackSTT replays the turn's clip; FallbackTTS fails over only before the first audio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.base import STT, TTS, ProviderError, ProviderInfo, VoiceSettings
from voxdialog.providers.chain import CallPolicy, ChainExhausted, FallbackSTT, FallbackTTS
from voxdialog.testing.clock import FakeClock
from voxdialog.testing.fakes import FakeSTT, FakeTTS
from voxdialog.testing.signals import silence, tone

CLIP = AudioChunk(tone(400.0), 16_000)
VOICE = VoiceSettings(voice="amy", speed=1.25)
TEXT = "Hello there, how are you?"


class DroppingTTS:
    """Speaks one chunk, then loses its connection."""

    def __init__(self) -> None:
        self.info = ProviderInfo(name="dropping", model="sine", streaming=True, sample_rate=8000)

    async def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        yield AudioChunk(tone(100.0, rate=8000), 8000)
        raise ProviderError("connection reset", retryable=True)


def _policy(**changes: Any) -> CallPolicy:
    return CallPolicy(**({"attempt_timeout_s": 2.0} | changes))


async def _audio(stream: AsyncIterator[AudioChunk], *, into: list[AudioChunk]) -> None:
    async for chunk in stream:
        into.append(chunk)


async def _speak(tts: TTS, text: str = TEXT) -> list[AudioChunk]:
    chunks: list[AudioChunk] = []
    await _audio(tts.synthesize(text, voice=VOICE), into=chunks)
    return chunks


# --- STT ---------------------------------------------------------------------------------


async def test_a_failed_stt_replays_the_same_clip_to_the_backup() -> None:
    primary = FakeSTT(["primary words"], fail_first=1)
    backup = FakeSTT(["backup words"])
    chain = FallbackSTT([primary, backup], policy=_policy())

    transcript = await chain.transcribe(CLIP, language="de")

    assert transcript.text == "backup words"
    assert transcript.language == "de"
    assert primary.clips == [CLIP]
    assert len(backup.clips) == 1
    assert backup.clips[0] is CLIP
    assert chain.failovers == 1


async def test_a_slow_stt_is_abandoned_at_the_attempt_timeout() -> None:
    primary = FakeSTT(["too late"], delay_s=30.0)
    backup = FakeSTT(["backup words"])
    chain = FallbackSTT([primary, backup], policy=_policy(attempt_timeout_s=0.05))

    assert (await chain.transcribe(CLIP)).text == "backup words"

    last_error = chain.health()[0].last_error
    assert last_error is not None
    assert last_error.startswith("ProviderTimeout")


async def test_an_open_stt_breaker_sends_turns_straight_to_the_backup() -> None:
    primary = FakeSTT(["primary words"], fail_first=1)
    backup = FakeSTT(["first", "second"])
    chain = FallbackSTT([primary, backup], policy=_policy(breaker_failures=1), clock=FakeClock())

    assert (await chain.transcribe(CLIP)).text == "first"
    assert (await chain.transcribe(CLIP)).text == "second"

    assert len(primary.clips) == 1
    assert [row.state for row in chain.health()] == ["open", "closed"]


async def test_an_stt_probe_transcribes_silence_and_restores_the_primary() -> None:
    clock = FakeClock()
    primary = FakeSTT(["", "primary words"], fail_first=1)
    backup = FakeSTT(["backup words"])
    chain = FallbackSTT(
        [primary, backup], policy=_policy(breaker_failures=1, breaker_reset_s=3.0), clock=clock
    )
    await chain.transcribe(CLIP)
    clock.advance(3.0)

    assert await chain.probe_once() == ["fake-stt"]

    assert primary.clips[-1] == AudioChunk(silence(100.0), 16_000)
    assert (await chain.transcribe(CLIP)).text == "primary words"


async def test_when_every_stt_fails_the_turn_gets_one_chain_exhausted_error() -> None:
    chain = FallbackSTT(
        [FakeSTT(fail_first=1), FakeSTT(fail_first=1, retryable=False)], policy=_policy()
    )

    with pytest.raises(ChainExhausted) as caught:
        await chain.transcribe(CLIP)

    assert [name for name, _ in caught.value.errors] == ["fake-stt", "fake-stt#2"]


def test_the_stt_chain_is_itself_an_stt_that_does_not_stream() -> None:
    chain: STT = FallbackSTT([FakeSTT()], policy=CallPolicy(), name="ears")

    assert chain.info.name == "ears"
    assert not chain.info.streaming
    assert chain.info.sample_rate == 16_000


# --- TTS ---------------------------------------------------------------------------------


async def test_a_tts_failing_before_its_first_audio_fails_over_to_the_backup() -> None:
    primary = FakeTTS(sample_rate=22_050, fail_first=1)
    backup = FakeTTS(sample_rate=16_000)
    chain = FallbackTTS([primary, backup], policy=_policy())

    chunks = await _speak(chain)

    expected = await _speak(FakeTTS(sample_rate=16_000))
    assert chunks == expected
    assert primary.texts == backup.texts == [TEXT]
    assert backup.voices == [VOICE]
    assert chain.failovers == 1


async def test_a_tts_failing_after_its_first_audio_does_not_switch_voices() -> None:
    backup = FakeTTS(sample_rate=16_000)
    chain = FallbackTTS([DroppingTTS(), backup], policy=_policy())
    chunks: list[AudioChunk] = []

    with pytest.raises(ProviderError) as caught:
        await _audio(chain.synthesize(TEXT, voice=VOICE), into=chunks)

    assert not isinstance(caught.value, ChainExhausted)
    assert [chunk.sample_rate for chunk in chunks] == [8000]
    assert backup.texts == []
    assert chain.failovers == 0


async def test_a_tts_silent_past_the_attempt_timeout_is_replaced_before_any_audio() -> None:
    primary = FakeTTS(sample_rate=22_050, delay_s=30.0)
    backup = FakeTTS(sample_rate=16_000)
    chain = FallbackTTS([primary, backup], policy=_policy(attempt_timeout_s=0.05))

    chunks = await _speak(chain)

    assert chunks
    assert {chunk.sample_rate for chunk in chunks} == {16_000}


async def test_closing_the_tts_chain_stream_closes_the_provider_stream() -> None:
    primary = FakeTTS(chunk_ms=50.0)
    chain = FallbackTTS([primary], policy=_policy())

    stream = chain.synthesize(TEXT, voice=VOICE)
    assert isinstance(stream, AsyncGenerator)
    await anext(stream)
    await stream.aclose()

    assert primary.cancelled == 1
    assert primary.completed == 0


async def test_cancelling_speech_mid_reply_closes_the_provider_stream() -> None:
    primary = FakeTTS(chunk_ms=50.0, chunk_delay_s=30.0)
    chain = FallbackTTS([primary], policy=_policy())
    chunks: list[AudioChunk] = []

    task = asyncio.create_task(_audio(chain.synthesize(TEXT, voice=VOICE), into=chunks))
    for _ in range(1000):
        if chunks:
            break
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert len(chunks) == 1
    assert primary.cancelled == 1


async def test_empty_text_yields_no_audio_and_no_failover() -> None:
    primary = FakeTTS()
    backup = FakeTTS()
    chain = FallbackTTS([primary, backup], policy=_policy())

    assert await _speak(chain, "   ") == []
    assert backup.texts == []
    assert chain.errors == {"fake-tts": 0, "fake-tts#2": 0}


async def test_a_tts_probe_speaks_a_word_and_restores_the_primary() -> None:
    clock = FakeClock()
    primary = FakeTTS(sample_rate=22_050, fail_first=1)
    backup = FakeTTS(sample_rate=16_000)
    chain = FallbackTTS(
        [primary, backup], policy=_policy(breaker_failures=1, breaker_reset_s=3.0), clock=clock
    )
    await _speak(chain)
    clock.advance(3.0)

    assert await chain.probe_once() == ["fake-tts"]

    assert primary.texts[-1] == "ok"
    assert {chunk.sample_rate for chunk in await _speak(chain)} == {22_050}


async def test_when_every_tts_fails_the_chain_raises_chain_exhausted() -> None:
    chain = FallbackTTS([FakeTTS(fail_first=1), FakeTTS(fail_first=1)], policy=_policy())

    with pytest.raises(ChainExhausted):
        await _speak(chain)


def test_the_tts_chain_is_itself_a_streaming_tts_at_the_primarys_rate() -> None:
    chain: TTS = FallbackTTS(
        [FakeTTS(sample_rate=24_000), FakeTTS(sample_rate=16_000)], policy=CallPolicy()
    )

    assert chain.info.streaming
    assert chain.info.sample_rate == 24_000


class _FailsAfterFirstCall:
    """Speaks its first text, then fails every later call (an outage starting mid-reply)."""

    def __init__(self, tts: FakeTTS) -> None:
        self._tts = tts
        self.info = tts.info
        self.calls = 0

    async def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        self.calls += 1
        if self.calls > 1:
            raise ProviderError("primary went down", retryable=True)
        async for chunk in self._tts.synthesize(text, voice=voice):
            yield chunk


async def test_a_reply_keeps_the_voice_that_spoke_its_first_sentence() -> None:
    primary = _FailsAfterFirstCall(FakeTTS(sample_rate=22_050))
    backup = FakeTTS(sample_rate=16_000)
    chain = FallbackTTS([primary, backup], policy=CallPolicy(attempt_timeout_s=1.0))
    reply = chain.for_reply()
    first = [c async for c in reply.synthesize("First sentence.", voice=VoiceSettings())]
    assert {c.sample_rate for c in first} == {22_050}
    with pytest.raises(ProviderError):
        _ = [c async for c in reply.synthesize("Second sentence.", voice=VoiceSettings())]
    assert backup.texts == []  # the backup voice never took over mid-reply
    # A new reply may pick the backup voice.
    fresh = [c async for c in chain.synthesize("Next reply.", voice=VoiceSettings())]
    assert {c.sample_rate for c in fresh} == {16_000}
