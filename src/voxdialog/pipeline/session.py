"""VoiceSession: one conversation's pipeline. Frames in, SessionEvents out.

The session only routes. Its parts each do one thing:

- ``Listener`` (listener.py): audio -> VAD -> turn events; speculation and partials.
- ``Transcriber`` (transcriber.py): one turn's transcript.
- ``Conversation`` (conversation.py): the items; client item operations answer with a
  typed ``Problem`` (problems.py) when they cannot be done.
- ``Responder`` (responder.py): the assistant's reply, cut on barge-in; yields its outcomes.
- ``SessionRecords`` (recorder.py): what is stored.

Every task the session starts belongs to its TaskGroup, so closing the session (or a failure
inside it) ends them all and touches no other session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TypeVar

from voxdialog.brain.base import BrainSession, HistoryMessage
from voxdialog.clock import Clock, MonotonicClock
from voxdialog.observability.metrics import observe_stage_timings
from voxdialog.pipeline.config import ResponseOptions, SessionConfig, brain_turn
from voxdialog.pipeline.conversation import Conversation, Item
from voxdialog.pipeline.events import (
    InputCleared,
    InputCommitted,
    ItemAdded,
    ItemDeleted,
    ItemTruncated,
    SessionEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionFailed,
    TurnFailed,
)
from voxdialog.pipeline.ids import new_id
from voxdialog.pipeline.listener import BYTES_PER_MS, Listener, SpeechBegan, TurnHeard
from voxdialog.pipeline.problems import (
    AudioEndBeyondItem,
    ItemNotFound,
    NoActiveResponse,
    Problem,
    ResponseAlreadyActive,
)
from voxdialog.pipeline.recorder import SessionInfo, SessionRecords, TurnRecorder
from voxdialog.pipeline.reply import ScriptedLine
from voxdialog.pipeline.responder import (
    Outcome,
    ReplyPlan,
    Responder,
    Response,
    StoreCommand,
    StoreMessage,
)
from voxdialog.pipeline.scoring import FrameScorer
from voxdialog.pipeline.tasks import SessionTasks
from voxdialog.pipeline.transcriber import Attempt, Transcriber
from voxdialog.providers.base import STT, TTS, ProviderError, VADStream, tts_for_reply

log = logging.getLogger(__name__)

T = TypeVar("T")
Emit = Callable[[SessionEvent], Awaitable[None]]
#: User turns whose audio and timing marks are kept in memory.
_KEPT_TURNS = 8
# Messages of context handed to the brain (the context service keeps the same number).
_HISTORY_LIMIT = 20


class VoiceSession:
    """The per-session pipeline. Call ``run()`` in a task; feed it with the other methods.

    Methods that answer a client's request return None when it was done, or the ``Problem``
    that stopped it (nothing changed then).
    """

    def __init__(
        self,
        *,
        info: SessionInfo,
        config: SessionConfig,
        vad: VADStream,
        stt: STT,
        tts: TTS,
        brain: BrainSession,
        emit: Emit,
        recorder: TurnRecorder | None = None,
        clock: Clock | None = None,
        max_items: int = 200,
        prior: Sequence[HistoryMessage] = (),
        scorer: FrameScorer | None = None,
    ) -> None:
        self.info = info
        # Context carried over from an earlier connection of the same conversation.
        self._prior = tuple(prior)
        self.config = config
        self._tts = tts
        self._brain = brain
        self._emit = emit
        self._records = SessionRecords(recorder)
        self._tasks = SessionTasks(
            info.session_id, on_failure=partial(emit, TurnFailed("The server hit an error."))
        )
        self._clock = clock or MonotonicClock()
        self.conversation = Conversation(max_items=max_items)
        self._transcriber = Transcriber(stt, clock=self._clock)
        self._responder = Responder(conversation=self.conversation, clock=self._clock)
        self._listener = Listener(
            vad=vad,
            config=config,
            transcriber=self._transcriber,
            clock=self._clock,
            spawn=self._tasks.task,
            emit=emit,
            agent_audible=self._responder.audible,
            scorer=scorer,
        )
        self.apply_config(config)
        self._transcripts: dict[str, asyncio.Task[None]] = {}

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Own the session's tasks until ``close()``."""
        await self._records.started(self.info)
        try:
            await self._tasks.own(on_close=self._stop_work)
        finally:
            await self._records.ended(self.info.session_id)

    async def _stop_work(self) -> None:
        for task in list(self._transcripts.values()):
            task.cancel()
        self._listener.close()
        # A reply cut by the end of the session is stored as far as it went (incomplete).
        try:
            await self._route(await self._responder.cancel("session_ended"))
        except Exception:
            log.exception("could not store the reply cut by the end of the session")
            self._responder.abandon()

    def close(self) -> None:
        """Stop the session; ``run()`` returns once its tasks are gone."""
        self._tasks.close()

    async def rebind(self, *, stt: STT, tts: TTS, brain: BrainSession, info: SessionInfo) -> None:
        """Answer with other stages from now on (a new agent); a reply under way keeps its own."""
        self._transcriber.stt, self._tts, self._brain, self.info = stt, tts, brain, info
        await self._records.started(info)

    @property
    def is_fresh(self) -> bool:
        """Nothing said yet: no items, no response, no turn under way, no earlier context."""
        return (
            not self._prior
            and not len(self.conversation)
            and self._responder.active is None
            and self._listener.idle
        )

    async def greet(self, text: str) -> bool:
        """Speak ``text`` as the opening line if nothing was said or asked yet; True if it was."""
        await self._tasks.running.wait()
        if not text.strip() or not self.is_fresh:
            return False
        return await self.create_response(ResponseOptions(say=text)) is None

    def apply_config(self, config: SessionConfig) -> None:
        """Take new settings (from ``session.update``)."""
        self.config = config
        self._listener.configure(config)
        self._transcriber.language = config.language
        self._transcriber.prompt = config.transcription_prompt

    # --- input audio ----------------------------------------------------------------------

    async def append_audio(self, pcm: bytes) -> None:
        """Feed PCM16 at the pipeline rate (16 kHz)."""
        await self._tasks.running.wait()
        async for heard in self._listener.hear(pcm):
            match heard:
                case SpeechBegan(item_id=item_id, audio_start_ms=start):
                    await self._emit(SpeechStarted(item_id, start))
                    if self.config.interrupt_response:
                        await self._route(await self._responder.interrupt())
                case TurnHeard() as turn:
                    await self._turn_heard(turn)

    async def _turn_heard(self, turn: TurnHeard) -> None:
        await self._emit(SpeechStopped(turn.item_id, turn.audio_end_ms))
        await self._commit_audio(
            turn.item_id,
            turn.clip,
            speculative=turn.speculation,
            respond=self.config.create_response,
            timings={"end_of_turn_ms": turn.end_of_turn_ms},
            speech_ended_at=turn.speech_ended_at,
        )

    # --- client requests ------------------------------------------------------------------

    async def commit(self) -> Problem | None:
        """``input_audio_buffer.commit``: the buffered audio becomes a user item."""
        await self._tasks.running.wait()
        taken = self._listener.take_commit()
        if not isinstance(taken, tuple):
            return taken
        clip, speech = taken
        await self._commit_audio(new_id("item"), clip, respond=False, speech=speech)
        return None

    async def clear_input(self) -> None:
        """``input_audio_buffer.clear``."""
        await self._tasks.running.wait()
        self._listener.clear()
        await self._emit(InputCleared())

    async def add_item(self, item: Item, *, previous_item_id: str | None = None) -> Problem | None:
        """``conversation.item.create``."""
        await self._tasks.running.wait()
        try:
            prev = self.conversation.add(item, previous_item_id=previous_item_id)
        except KeyError:
            return ItemNotFound(str(previous_item_id), param="previous_item_id")
        view = item.snapshot()
        if item.type == "message" and item.text:
            await self._records.message(self.info.session_id, view)
        await self._emit(ItemAdded(view, prev))
        return None

    async def delete_item(self, item_id: str) -> Problem | None:
        """``conversation.item.delete``."""
        await self._tasks.running.wait()
        if not self.conversation.delete(item_id):
            return ItemNotFound(item_id, param="item_id")
        await self._records.deleted(self.info.session_id, item_id)
        await self._emit(ItemDeleted(item_id))
        return None

    async def truncate(self, item_id: str, audio_end_ms: int) -> Problem | None:
        """``conversation.item.truncate``: the client played only ``audio_end_ms`` of it."""
        await self._tasks.running.wait()
        item = self.conversation.get(item_id)
        if item is None or item.role != "assistant":
            return ItemNotFound(item_id, param="item_id", assistant_only=True)
        if audio_end_ms < 0 or audio_end_ms > item.audio_ms + 1:
            return AudioEndBeyondItem(item_id, audio_end_ms, item.audio_ms)
        await self._route(await self._responder.truncate(item, audio_end_ms))
        await self._records.message(self.info.session_id, item.snapshot())
        await self._emit(ItemTruncated(item_id, audio_end_ms))
        return None

    async def create_response(self, options: ResponseOptions | None = None) -> Problem | None:
        """``response.create`` (or a turn's automatic response)."""
        await self._tasks.running.wait()
        if (active := self._responder.active) is not None:
            return ResponseAlreadyActive(active.response_id)
        options = options or ResponseOptions()
        audio = self.config.output_audio if options.output_audio is None else options.output_audio
        response = self._responder.begin(audio=audio)
        user = self.conversation.last_message("user")
        response.task = self._tasks.spawn(
            self._respond(response, options, audio=audio),
            turn_id=user.id if user else None,
            response_id=response.response_id,
        )
        return None

    async def cancel_response(self) -> Problem | None:
        """``response.cancel``."""
        await self._tasks.running.wait()
        if self._responder.active is None:
            return NoActiveResponse()
        await self._route(await self._responder.cancel("client_cancelled"))
        return None

    # --- the turn -------------------------------------------------------------------------

    async def _commit_audio(
        self,
        item_id: str,
        clip: bytes,
        *,
        respond: bool,
        speculative: Attempt | None = None,
        timings: dict[str, float] | None = None,
        speech: bytes | None = None,
        speech_ended_at: float | None = None,
    ) -> None:
        """Add the user's turn and transcribe it (``speech``: just the part to transcribe)."""
        item, prev = self.conversation.add_user_audio(
            item_id,
            clip,
            audio_ms=len(clip) / BYTES_PER_MS,
            timings=timings or {},
            keep=_KEPT_TURNS,
        )
        item.speech_ended_at = speech_ended_at
        view = item.snapshot()
        await self._records.pending(self.info.session_id, view)
        await self._emit(InputCommitted(view, prev))
        self._transcripts[item_id] = self._tasks.spawn(
            self._finish_user_turn(
                item, speculative, respond, speech=clip if speech is None else speech
            ),
            turn_id=item_id,
        )

    async def _finish_user_turn(
        self, item: Item, speculative: Attempt | None, respond: bool, *, speech: bytes
    ) -> None:
        try:
            text = await self._transcriber.fill(
                item, speech, speculative, closing=self._tasks.closed.is_set
            )
        except ProviderError as e:
            log.warning(
                "transcription failed", extra={"session_id": self.info.session_id, "error": str(e)}
            )
            await self._records.failed(self.info.session_id, item.snapshot())
            await self._emit(TranscriptionFailed(item.id, str(e)))
            return
        finally:
            self._transcripts.pop(item.id, None)
        observe_stage_timings(item.timings)
        await self._records.message(self.info.session_id, item.snapshot())
        if self.config.transcribe_input:
            await self._emit(TranscriptionCompleted(item.id, text, item.audio_ms / 1000))
        if respond and text.strip():
            await self.create_response()

    async def _respond(self, response: Response, options: ResponseOptions, *, audio: bool) -> None:
        plan = await self._plan(options, audio=audio)
        async with contextlib.aclosing(self._responder.run(response, plan)) as outcomes:
            async for outcome in outcomes:
                await self._route([outcome])

    async def _plan(self, options: ResponseOptions, *, audio: bool) -> ReplyPlan:
        """What a response answers, once every committed user turn has its transcript."""
        pending = [t for t in self._transcripts.values() if t is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending)
        user = self.conversation.last_message("user")
        return ReplyPlan(
            turn=brain_turn(
                user.text or "" if user else "",
                (*self._prior, *self.conversation.history())[-_HISTORY_LIMIT:],
                self.config,
                options,
            ),
            brain=self._brain if options.say is None else ScriptedLine(options.say),
            tts=tts_for_reply(self._tts) if audio else None,
            voice=options.voice or self.config.voice,
            user=user.snapshot() if user else None,
            speech_ended_at=_take_speech_end(user),
            in_conversation=options.in_conversation,
        )

    async def _route(self, outcomes: list[Outcome]) -> None:
        """Send the responder's events to the client and its records to the store."""
        session_id = self.info.session_id
        for outcome in outcomes:
            match outcome:
                case StoreMessage(item=item):
                    await self._records.message(session_id, item)
                case StoreCommand(user=user, outcome=done):
                    await self._records.command(session_id, user, done)
                case _:
                    await self._emit(outcome)


def _take_speech_end(user: Item | None) -> float | None:
    # Only the first reply to a spoken turn measures end of speech -> first audio.
    if user is None:
        return None
    ended, user.speech_ended_at = user.speech_ended_at, None
    return ended
