"""VoiceSession with fakes: turns, speculation, responses, barge-in, truncation, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from voxdialog.brain.base import BrainEvent, BrainTurn, CommandOutcome, ReplyText
from voxdialog.pipeline.config import SessionConfig
from voxdialog.pipeline.events import (
    InputCommitted,
    ItemTruncated,
    ResponseAudio,
    ResponseEnded,
    ResponseStarted,
    SessionEvent,
    SpeechStarted,
    TranscriptionCompleted,
    TranscriptionPartial,
)
from voxdialog.pipeline.problems import (
    CommitTooShort,
    NoActiveResponse,
    ResponseAlreadyActive,
)
from voxdialog.pipeline.recorder import SessionInfo
from voxdialog.pipeline.session import VoiceSession
from voxdialog.security.principal import Scope
from voxdialog.testing.fakes import FakeSTT, FakeTTS, FakeVAD
from voxdialog.testing.signals import silence, tone

SCOPE = Scope("t1", "u1")


class ScriptedBrain:
    """Answers every turn with fixed sentences (for pipeline tests only)."""

    def __init__(self, sentences: list[str]) -> None:
        self.sentences = sentences
        self.turns: list[BrainTurn] = []

    async def respond(self, turn: BrainTurn) -> AsyncIterator[BrainEvent]:
        self.turns.append(turn)
        for sentence in self.sentences:
            yield ReplyText(sentence + " ")
        yield CommandOutcome(intent="scripted", confidence=1.0, success=True)


class Harness:
    def __init__(
        self,
        *,
        stt: FakeSTT,
        tts: FakeTTS,
        brain: ScriptedBrain,
        config: SessionConfig | None = None,
    ) -> None:
        self.events: list[SessionEvent] = []
        self.tts = tts
        self.brain = brain
        self.session = VoiceSession(
            info=SessionInfo("sess_1", SCOPE, "local-voice"),
            config=config or SessionConfig(transcribe_input=True),
            vad=FakeVAD().open_stream(16_000),
            stt=stt,
            tts=tts,
            brain=brain,
            emit=self._emit,
        )

    async def _emit(self, event: SessionEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[SessionEvent]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, kind: type, count: int = 1, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.of(kind)) < count:
                await asyncio.sleep(0.005)


async def test_a_spoken_turn_is_transcribed_and_answered_with_audio() -> None:
    h = Harness(stt=FakeSTT(["add milk"]), tts=FakeTTS(), brain=ScriptedBrain(["Done.", "Ok."]))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.append_audio(silence(300) + tone(800) + silence(900))
        await h.wait_for(ResponseEnded)
        h.session.close()
    assert [type(e).__name__ for e in h.events[:3]] == [
        "SpeechStarted",
        "SpeechStopped",
        "InputCommitted",
    ]
    transcript = h.of(TranscriptionCompleted)[0]
    assert isinstance(transcript, TranscriptionCompleted)
    assert transcript.transcript == "add milk"
    ended = h.of(ResponseEnded)[0]
    assert isinstance(ended, ResponseEnded)
    assert ended.status == "completed"
    assert ended.item.text == "Done. Ok."
    assert h.brain.turns[0].text == "add milk"
    assert h.tts.texts == ["Done.", "Ok."]
    assert h.of(ResponseAudio)


async def test_speculative_transcription_is_reused_when_the_turn_ends() -> None:
    stt = FakeSTT(["hello there"])
    h = Harness(stt=stt, tts=FakeTTS(), brain=ScriptedBrain(["Hi."]))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.append_audio(tone(640) + silence(200))
        await asyncio.sleep(0.01)  # the speculative STT runs during the silence
        await h.session.append_audio(silence(600))
        await h.wait_for(ResponseEnded)
        h.session.close()
    assert len(stt.clips) == 1
    transcribed = h.session.conversation.last_message("user")
    assert transcribed is not None
    assert transcribed.timings["speculative"] == 1.0


async def test_speech_resuming_discards_the_speculation() -> None:
    stt = FakeSTT(["first try", "whole sentence"], delay_s=0.05)
    h = Harness(stt=stt, tts=FakeTTS(), brain=ScriptedBrain(["Ok."]))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.append_audio(tone(640) + silence(200))
        await asyncio.sleep(0.01)
        await h.session.append_audio(tone(640) + silence(900))
        await h.wait_for(ResponseEnded)
        h.session.close()
    texts = [
        e.transcript for e in h.of(TranscriptionCompleted) if isinstance(e, TranscriptionCompleted)
    ]
    assert len(texts) == 1
    assert h.brain.turns[0].text == texts[0]
    assert len(stt.clips) >= 2  # the resumed turn was transcribed again, whole


async def test_barge_in_cancels_the_reply_and_keeps_only_the_sent_text() -> None:
    tts = FakeTTS(chunk_ms=100, chunk_delay_s=0.05)
    brain = ScriptedBrain(["First sentence here.", "Second sentence is long.", "Third one."])
    h = Harness(stt=FakeSTT(["tell me", "stop"]), tts=tts, brain=brain)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.append_audio(tone(640) + silence(700))
        await h.wait_for(ResponseAudio)
        # A cough (160 ms) while the agent speaks does not interrupt ...
        await h.session.append_audio(tone(160) + silence(300))
        assert not h.of(ResponseEnded)
        assert len(h.of(SpeechStarted)) == 1
        # ... but real speech does.
        await h.session.append_audio(tone(400))
        await h.wait_for(ResponseEnded)
        await h.session.append_audio(silence(700))
        await h.wait_for(ResponseEnded, count=2)
        h.session.close()
    first = h.of(ResponseEnded)[0]
    assert isinstance(first, ResponseEnded)
    assert first.status == "cancelled"
    assert first.reason == "turn_detected"
    assert first.item.text
    assert "Third one." not in first.item.text
    assert tts.cancelled >= 1


async def test_truncate_cuts_the_stored_text_to_the_audio_heard() -> None:
    tts = FakeTTS(ms_per_char=50)
    brain = ScriptedBrain(["One two three four.", "Five six seven eight."])
    h = Harness(stt=FakeSTT(["go"]), tts=tts, brain=brain)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.append_audio(tone(640) + silence(700))
        await h.wait_for(ResponseEnded)
        ended = h.of(ResponseEnded)[0]
        assert isinstance(ended, ResponseEnded)
        first_ms = len("One two three four.") * 50
        assert await h.session.truncate(ended.item.id, int(first_ms + 10)) is None
        h.session.close()
    # The event kept what it said when it was sent; the conversation holds the cut item.
    assert ended.item.text == "One two three four. Five six seven eight."
    assert ended.item.status == "completed"
    cut = h.session.conversation.get(ended.item.id)
    assert cut is not None
    assert (cut.text, cut.status) == ("One two three four.", "incomplete")
    assert h.of(ItemTruncated)


async def test_a_second_response_while_one_is_active_is_refused() -> None:
    tts = FakeTTS(chunk_delay_s=0.05)
    h = Harness(stt=FakeSTT(), tts=tts, brain=ScriptedBrain(["A long answer here."]))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.create_response()
        await h.wait_for(ResponseStarted)
        refused = await h.session.create_response()
        assert await h.session.cancel_response() is None
        not_active = await h.session.cancel_response()
        h.session.close()
    started = h.of(ResponseStarted)[0]
    assert isinstance(started, ResponseStarted)
    assert refused == ResponseAlreadyActive(started.response_id)
    assert not_active == NoActiveResponse()
    ended = h.of(ResponseEnded)[0]
    assert isinstance(ended, ResponseEnded)
    assert (ended.status, ended.reason) == ("cancelled", "client_cancelled")


async def test_a_failing_transcription_is_reported_and_the_session_goes_on() -> None:
    h = Harness(
        stt=FakeSTT(["second"], fail_first=2, retryable=False),
        tts=FakeTTS(),
        brain=ScriptedBrain(["Ok."]),
    )
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.append_audio(tone(640) + silence(700))
        await asyncio.sleep(0.05)
        await h.session.append_audio(tone(640) + silence(700))
        await h.wait_for(ResponseEnded)
        h.session.close()
    names = [type(e).__name__ for e in h.events]
    assert "TranscriptionFailed" in names
    assert h.brain.turns[-1].text == "second"


async def test_manual_commit_needs_100_ms_of_audio() -> None:
    config = SessionConfig(vad_enabled=False, create_response=False)
    h = Harness(stt=FakeSTT(["typed"]), tts=FakeTTS(), brain=ScriptedBrain(["Ok."]), config=config)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.append_audio(tone(50))
        too_short = await h.session.commit()
        await h.session.append_audio(tone(200))
        assert await h.session.commit() is None
        await h.session.create_response()
        await h.wait_for(ResponseEnded)
        h.session.close()
    assert isinstance(too_short, CommitTooShort)
    assert (round(too_short.buffered_ms), too_short.minimum_ms) == (50, 100)
    assert h.brain.turns[0].text == "typed"


async def test_a_long_session_keeps_audio_only_for_recent_turns() -> None:
    config = SessionConfig(vad_enabled=False, create_response=False)
    h = Harness(stt=FakeSTT(), tts=FakeTTS(), brain=ScriptedBrain(["Ok."]), config=config)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        for _ in range(20):
            await h.session.append_audio(tone(200))
            await h.session.commit()
        h.session.close()
    users = [i for i in h.session.conversation if i.role == "user"]
    assert len(users) == 20
    assert sum(i.audio is not None for i in users) == 8
    assert users[-1].audio is not None


async def test_a_greeting_is_spoken_without_asking_the_brain_and_only_when_fresh() -> None:
    h = Harness(stt=FakeSTT(["add milk"]), tts=FakeTTS(), brain=ScriptedBrain(["Done."]))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        assert h.session.is_fresh
        assert await h.session.greet("Hello, I keep your list.")
        await h.wait_for(ResponseEnded)
        # Something has been said now: a second greeting is not.
        assert not h.session.is_fresh
        assert not await h.session.greet("Hello again.")
        h.session.close()
    ended = h.of(ResponseEnded)
    assert len(ended) == 1
    assert isinstance(ended[0], ResponseEnded)
    assert ended[0].item.text == "Hello, I keep your list."
    assert h.tts.texts == ["Hello, I keep your list."]
    assert h.brain.turns == []


async def test_no_greeting_while_the_person_is_already_talking() -> None:
    h = Harness(stt=FakeSTT(["add milk"]), tts=FakeTTS(), brain=ScriptedBrain(["Done."]))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.append_audio(silence(100) + tone(400))
        await h.wait_for(SpeechStarted)
        assert not await h.session.greet("Hello.")
        h.session.close()
    assert not h.of(ResponseStarted)


async def test_rebound_stages_answer_the_next_turn() -> None:
    first, second = ScriptedBrain(["First."]), ScriptedBrain(["Second."])
    h = Harness(stt=FakeSTT(["hello"]), tts=FakeTTS(), brain=first)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.rebind(
            stt=FakeSTT(["hi there"]),
            tts=h.tts,
            brain=second,
            info=SessionInfo("sess_1", SCOPE, "local-voice", agent="pirate"),
        )
        await h.session.append_audio(silence(300) + tone(800) + silence(900))
        await h.wait_for(ResponseEnded)
        h.session.close()
    assert first.turns == []
    assert [t.text for t in second.turns] == ["hi there"]
    assert h.session.info.agent == "pirate"


async def test_a_manual_commit_transcribes_only_the_speech_but_keeps_the_whole_clip() -> None:
    config = SessionConfig(vad_enabled=False, create_response=False)
    stt = FakeSTT(["add milk"])
    h = Harness(stt=stt, tts=FakeTTS(), brain=ScriptedBrain(["Ok."]), config=config)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        # A button held four seconds before the words, and two after them.
        await h.session.append_audio(silence(4000) + tone(1000) + silence(2000))
        await h.session.commit()
        await h.wait_for(InputCommitted)
        await h.session.create_response()
        await h.wait_for(ResponseEnded)
        h.session.close()
    committed = h.of(InputCommitted)[0]
    assert isinstance(committed, InputCommitted)
    assert committed.item.audio_ms == 7000
    # The speech with its padding: 300 ms before, 1 s of tone, about 300 ms after.
    (heard,) = stt.clips
    assert 1500 <= heard.duration_ms <= 1700
    assert h.brain.turns[0].text == "add milk"


async def test_a_manual_commit_without_speech_is_transcribed_whole() -> None:
    config = SessionConfig(vad_enabled=False, create_response=False)
    stt = FakeSTT([""])
    h = Harness(stt=stt, tts=FakeTTS(), brain=ScriptedBrain(["Ok."]), config=config)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.append_audio(silence(800))
        await h.session.commit()
        await h.wait_for(InputCommitted)
        async with asyncio.timeout(5):
            while not stt.clips:
                await asyncio.sleep(0.005)
        h.session.close()
    assert stt.clips[0].duration_ms == 800


class BusySTT(FakeSTT):
    """A speech model whose every slot is taken."""

    busy = True


async def _talk_slowly(h: Harness, ms: int) -> None:
    for _ in range(ms // 100):
        await h.session.append_audio(tone(100))
        await asyncio.sleep(0.01)  # partial transcriptions run between the pieces


async def test_partial_transcripts_come_during_the_turn_for_its_item() -> None:
    config = SessionConfig(transcribe_input=True, partial_transcripts=True, create_response=False)
    stt = FakeSTT([f"words {n}" for n in range(20)])
    h = Harness(stt=stt, tts=FakeTTS(), brain=ScriptedBrain(["Ok."]), config=config)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(h.session.run())
        await h.session.append_audio(silence(300))
        await _talk_slowly(h, 3000)
        await h.session.append_audio(silence(900))
        await h.wait_for(TranscriptionCompleted)
        h.session.close()
    kinds = [type(e).__name__ for e in h.events]
    partials = h.of(TranscriptionPartial)
    started = h.of(SpeechStarted)[0]
    assert isinstance(started, SpeechStarted)
    assert 2 <= len(partials) <= 3  # one a second of speech, from 0.7 s of it on
    assert {p.item_id for p in partials if isinstance(p, TranscriptionPartial)} == {started.item_id}
    assert kinds.index("TranscriptionPartial") < kinds.index("SpeechStopped")


async def test_no_partial_transcripts_while_the_speech_model_is_busy_or_unasked() -> None:
    for stt, asked in ((BusySTT(["a", "b", "c"]), True), (FakeSTT(["a", "b", "c"]), False)):
        config = SessionConfig(transcribe_input=True, partial_transcripts=asked)
        h = Harness(stt=stt, tts=FakeTTS(), brain=ScriptedBrain(["Ok."]), config=config)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(h.session.run())
            await _talk_slowly(h, 2500)
            h.session.close()
        assert not h.of(TranscriptionPartial)


async def test_a_large_append_lets_the_event_loop_serve_others_while_it_is_scored() -> None:
    for vad_enabled in (True, False):
        config = SessionConfig(vad_enabled=vad_enabled, create_response=False)
        h = Harness(stt=FakeSTT(), tts=FakeTTS(), brain=ScriptedBrain(["Ok."]), config=config)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(h.session.run())
            other = tg.create_task(ticker())  # another session, say
            await asyncio.sleep(0)
            before = ticks
            await h.session.append_audio(silence(20_000))  # 625 VAD frames in one event
            during = ticks - before
            other.cancel()
            h.session.close()
        assert during >= 5, (vad_enabled, during)
