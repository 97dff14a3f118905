"""The session acknowledges only what is stored (R13): each message is recorded before the
event that reports it to the client (item added, transcription completed or failed, response
done, item truncated or deleted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from voxdialog.brain.base import BrainEvent, BrainTurn, CommandOutcome, ReplyText
from voxdialog.pipeline.config import SessionConfig
from voxdialog.pipeline.conversation import Item
from voxdialog.pipeline.events import (
    InputCommitted,
    ItemAdded,
    ItemDeleted,
    ItemTruncated,
    ResponseEnded,
    ResponseStarted,
    SessionEvent,
    TranscriptionCompleted,
    TranscriptionFailed,
)
from voxdialog.pipeline.recorder import MessageRecord, SessionInfo
from voxdialog.pipeline.session import VoiceSession
from voxdialog.security.principal import Scope
from voxdialog.testing.fakes import FakeSTT, FakeTTS, FakeVAD
from voxdialog.testing.signals import silence, tone

Entry = tuple[str, str, str, str]  # ("stored" | "deleted" | "sent", item id, status, text/kind)


class Journal:
    """One ordered log of what was stored and what was sent."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    # TurnRecorder
    async def session_started(self, info: SessionInfo) -> None:
        return None

    async def session_ended(self, session_id: str) -> None:
        return None

    async def message(self, record: MessageRecord) -> None:
        await asyncio.sleep(0.002)  # a commit takes time: an early ack would overtake it
        self.entries.append(("stored", record.item_id, record.status, record.text))

    async def message_deleted(self, session_id: str, item_id: str) -> None:
        await asyncio.sleep(0.002)
        self.entries.append(("deleted", item_id, "", ""))

    async def command(
        self, session_id: str, item_id: str, text: str, outcome: CommandOutcome
    ) -> None:
        return None

    # the client
    async def emit(self, event: SessionEvent) -> None:
        item_id = getattr(event, "item_id", None) or getattr(getattr(event, "item", None), "id", "")
        self.entries.append(("sent", str(item_id), "", type(event).__name__))

    def index(self, entry: Entry) -> int:
        return self.entries.index(entry)

    def first_stored(
        self, item_id: str, *, text: str | None = None, status: str | None = None
    ) -> int:
        for n, (kind, iid, st, tx) in enumerate(self.entries):
            matches = (text is None or tx == text) and (status is None or st == status)
            if kind == "stored" and iid == item_id and matches:
                return n
        raise AssertionError(f"{item_id} never stored with text={text!r} status={status!r}")

    def sent(self, item_id: str, kind: type) -> int:
        return self.index(("sent", item_id, "", kind.__name__))


class Brain:
    async def respond(self, turn: BrainTurn) -> AsyncIterator[BrainEvent]:
        yield ReplyText("One two three four. ")
        yield CommandOutcome(intent="chat", confidence=1.0, success=True)


def session(journal: Journal, stt: FakeSTT, config: SessionConfig | None = None) -> VoiceSession:
    return VoiceSession(
        info=SessionInfo("sess_1", Scope("t1", "u1"), "local-voice"),
        config=config or SessionConfig(transcribe_input=True),
        vad=FakeVAD().open_stream(16_000),
        stt=stt,
        tts=FakeTTS(ms_per_char=20),
        brain=Brain(),
        emit=journal.emit,
        recorder=journal,
    )


async def until(journal: Journal, kind: type, count: int = 1) -> None:
    async with asyncio.timeout(5):
        while sum(1 for e in journal.entries if e[0] == "sent" and e[3] == kind.__name__) < count:
            await asyncio.sleep(0.005)


async def test_a_spoken_turn_and_its_reply_are_stored_before_they_are_acknowledged() -> None:
    journal = Journal()
    voice = session(journal, FakeSTT(["add milk"]))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(voice.run())
        await voice.append_audio(tone(640) + silence(700))
        await until(journal, ResponseEnded)
        voice.close()
    user = voice.conversation.last_message("user")
    reply = voice.conversation.last_message("assistant")
    assert user is not None
    assert reply is not None
    assert journal.first_stored(user.id, status="in_progress") < journal.sent(
        user.id, InputCommitted
    )
    assert journal.first_stored(user.id, text="add milk") < journal.sent(
        user.id, TranscriptionCompleted
    )
    assert journal.first_stored(reply.id, text="One two three four.") < journal.sent(
        reply.id, ResponseEnded
    )


async def test_client_items_are_stored_before_added_truncated_or_deleted_is_sent() -> None:
    journal = Journal()
    voice = session(journal, FakeSTT(), SessionConfig(create_response=False))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(voice.run())
        assert await voice.add_item(Item(id="item_c", text="hello")) is None
        assert await voice.create_response() is None
        await until(journal, ResponseEnded)
        reply = voice.conversation.last_message("assistant")
        assert reply is not None
        assert await voice.truncate(reply.id, 100) is None
        assert await voice.delete_item("item_c") is None
        voice.close()
    assert journal.first_stored("item_c", text="hello") < journal.sent("item_c", ItemAdded)
    truncated = journal.sent(reply.id, ItemTruncated)
    assert journal.entries[truncated - 1][:3] == ("stored", reply.id, "incomplete")
    assert journal.index(("deleted", "item_c", "", "")) < journal.sent("item_c", ItemDeleted)


async def test_a_turn_that_cannot_be_transcribed_is_stored_as_failed_before_it_is_reported() -> (
    None
):
    journal = Journal()
    voice = session(journal, FakeSTT(fail_first=5, retryable=False))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(voice.run())
        await voice.append_audio(tone(640) + silence(700))
        await until(journal, TranscriptionFailed)
        voice.close()
    user = voice.conversation.last_message("user")
    assert user is not None
    assert journal.first_stored(user.id, status="failed", text="") < journal.sent(
        user.id, TranscriptionFailed
    )


async def test_a_reply_cut_by_the_end_of_the_session_is_stored_as_far_as_it_went() -> None:
    journal = Journal()
    voice = VoiceSession(
        info=SessionInfo("sess_1", Scope("t1", "u1"), "local-voice"),
        config=SessionConfig(create_response=False),
        vad=FakeVAD().open_stream(16_000),
        stt=FakeSTT(),
        tts=FakeTTS(chunk_ms=100, chunk_delay_s=0.05),
        brain=Brain(),
        emit=journal.emit,
        recorder=journal,
    )
    async with asyncio.TaskGroup() as tg:
        tg.create_task(voice.run())
        assert await voice.create_response() is None
        await until(journal, ResponseStarted)
        while not any(e[3] == "ResponseText" for e in journal.entries):
            await asyncio.sleep(0.01)
        voice.close()  # e.g. a SIGTERM drain ran out of time
    reply = voice.conversation.last_message("assistant")
    assert reply is not None
    stored = [e for e in journal.entries if e[0] == "stored" and e[1] == reply.id]
    assert stored
    assert stored[-1][2] == "incomplete"
    assert stored[-1][3]  # what had been said is kept
