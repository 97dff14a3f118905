"""Per-stage histograms are observed from the very timings each message stores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator

import pytest
from prometheus_client import REGISTRY

from voxdialog.brain.base import BrainEvent, BrainTurn, CommandOutcome, ReplyText
from voxdialog.observability.loop_lag import sample_loop_lag
from voxdialog.observability.stages import FirstAudioTimer
from voxdialog.pipeline.config import SessionConfig
from voxdialog.pipeline.events import ResponseEnded, SessionEvent
from voxdialog.pipeline.recorder import MessageRecord, SessionInfo
from voxdialog.pipeline.session import VoiceSession
from voxdialog.providers.base import VoiceSettings
from voxdialog.security.principal import Scope
from voxdialog.testing.fakes import FakeSTT, FakeTTS, FakeVAD
from voxdialog.testing.signals import silence, tone

#: Stored timing key -> the histogram it feeds.
STAGES = {
    "end_of_turn_ms": "voxdialog_end_of_turn_detection_seconds",
    "stt_wait_ms": "voxdialog_stt_final_transcript_seconds",
    "brain_first_ms": "voxdialog_brain_first_text_seconds",
    "tts_first_chunk_ms": "voxdialog_tts_first_audio_seconds",
    "end_of_speech_to_first_audio_ms": "voxdialog_end_of_speech_to_first_audio_seconds",
}


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


class Brain:
    async def respond(self, turn: BrainTurn) -> AsyncIterator[BrainEvent]:
        yield ReplyText("Done. ")
        yield ReplyText("Anything else?")
        yield CommandOutcome(intent="scripted", confidence=1.0, success=True)


class Recorder:
    def __init__(self) -> None:
        self.messages: dict[str, MessageRecord] = {}

    async def session_started(self, info: SessionInfo) -> None:
        pass

    async def session_ended(self, session_id: str) -> None:
        pass

    async def message(self, record: MessageRecord) -> None:
        self.messages[record.item_id] = record

    async def message_deleted(self, session_id: str, item_id: str) -> None:
        pass

    async def command(
        self, session_id: str, item_id: str, text: str, outcome: CommandOutcome
    ) -> None:
        pass


async def test_each_stage_histogram_gets_the_stored_timing_of_its_message() -> None:
    events: list[SessionEvent] = []

    async def emit(event: SessionEvent) -> None:
        events.append(event)

    recorder = Recorder()
    session = VoiceSession(
        info=SessionInfo("sess_m", Scope("t1", "u1"), "local-voice"),
        config=SessionConfig(),
        vad=FakeVAD().open_stream(16_000),
        stt=FakeSTT(["add milk"], delay_s=0.01),
        tts=FakeTTS(delay_s=0.01),
        brain=Brain(),
        emit=emit,
        recorder=recorder,
    )
    counts = {key: sample(f"{name}_count") for key, name in STAGES.items()}
    sums = {key: sample(f"{name}_sum") for key, name in STAGES.items()}
    async with asyncio.TaskGroup() as tg:
        tg.create_task(session.run())
        await session.append_audio(silence(300) + tone(800) + silence(900))
        async with asyncio.timeout(5):
            while not any(isinstance(e, ResponseEnded) for e in events):
                await asyncio.sleep(0.005)
        session.close()

    user, assistant = (
        next(m for m in recorder.messages.values() if m.role == role)
        for role in ("user", "assistant")
    )
    stored = {**user.timings, **assistant.timings}
    for key, name in STAGES.items():
        assert sample(f"{name}_count") == counts[key] + 1, key
        assert sample(f"{name}_sum") - sums[key] == pytest.approx(stored[key] / 1000), key


async def test_the_first_audio_timer_passes_audio_through_and_closes_early_streams() -> None:
    tts = FakeTTS(chunk_ms=100.0, delay_s=0.01)
    timer = FirstAudioTimer(tts)
    assert timer.info is tts.info
    chunks = [c async for c in timer.synthesize("Hello there.", voice=VoiceSettings())]
    assert sum(c.duration_ms for c in chunks) == pytest.approx(12 * 60.0, abs=1)
    assert timer.first_chunk_ms is not None
    stream = timer.synthesize("A second sentence.", voice=VoiceSettings())
    assert isinstance(stream, AsyncGenerator)
    await anext(stream)
    await stream.aclose()
    assert (tts.completed, tts.cancelled) == (1, 1)


async def test_the_loop_lag_sampler_sees_a_blocked_loop() -> None:
    count = sample("voxdialog_event_loop_lag_seconds_count")
    total = sample("voxdialog_event_loop_lag_seconds_sum")
    sampler = asyncio.create_task(sample_loop_lag(0.01))
    await asyncio.sleep(0.05)
    time.sleep(0.2)  # noqa: ASYNC251 -- blocking the loop on purpose is the point
    await asyncio.sleep(0.05)
    sampler.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sampler
    assert sample("voxdialog_event_loop_lag_seconds_count") >= count + 2
    # The sleeper due during the block woke at least 0.19 s late; the others add to that.
    assert sample("voxdialog_event_loop_lag_seconds_sum") - total >= 0.15


async def test_the_loop_lag_sampler_needs_a_positive_interval() -> None:
    with pytest.raises(ValueError, match="positive"):
        await sample_loop_lag(0)
