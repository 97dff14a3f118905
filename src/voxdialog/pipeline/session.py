"""VoiceSession: one conversation's pipeline. Frames in, SessionEvents out.

It routes: audio -> VAD -> TurnDetector -> (speculative) STT -> brain -> chunker -> TTS, and
decides on barge-in. Every task it starts belongs to its TaskGroup, so closing the session
(or a failure inside it) ends them all and touches no other session.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from voxdialog.audio.formats import PIPELINE_RATE, AudioChunk
from voxdialog.brain.base import (
    BrainSession,
    BrainTurn,
    CommandOutcome,
    HistoryMessage,
)
from voxdialog.observability.logging import log_context
from voxdialog.observability.metrics import (
    AUDIO_FRAMES_DROPPED,
    DROP_BUFFER_FULL,
    observe_stage_timings,
)
from voxdialog.pipeline.clock import Clock, MonotonicClock
from voxdialog.pipeline.conversation import Conversation, Item
from voxdialog.pipeline.events import (
    InputCleared,
    InputCommitted,
    ItemAdded,
    ItemDeleted,
    ItemTruncated,
    SessionEvent,
    SessionProblem,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionFailed,
    TranscriptionPartial,
)
from voxdialog.pipeline.ids import new_id
from voxdialog.pipeline.manual import ManualBuffer
from voxdialog.pipeline.recorder import MessageRecord, SessionInfo, TurnRecorder
from voxdialog.pipeline.reply import ScriptedLine
from voxdialog.pipeline.responder import ReplyPlan, Responder
from voxdialog.pipeline.turns import (
    SilenceBegan,
    SpeechResumed,
    TurnConfig,
    TurnDetector,
    TurnEnded,
)
from voxdialog.pipeline.turns import SpeechStarted as TurnSpeechStarted
from voxdialog.providers.base import (
    STT,
    TTS,
    ProviderError,
    ToolSpec,
    Transcript,
    VADStream,
    VoiceSettings,
)

log = logging.getLogger(__name__)

Emit = Callable[[SessionEvent], Awaitable[None]]
_BYTES_PER_MS = PIPELINE_RATE * 2 // 1000
_MIN_COMMIT_MS = 100
_MAX_MANUAL_BUFFER_MS = 10 * 60 * 1000
# Audio kept after the last voiced frame of a manual commit, so the last word is not clipped.
_SPEECH_TAIL_MS = 300
# VAD frames scored between two yields to the event loop (about 2 s of audio, ~16 ms of work).
_FRAMES_PER_YIELD = 64
# Partial transcripts: how often while the person talks, and from how much speech on.
_PARTIAL_EVERY_MS = 1000
_PARTIAL_MIN_MS = 700
#: User turns whose audio and timing marks are kept in memory.
_KEPT_TURNS = 8
# Messages of context handed to the brain (the context service keeps the same number).
_HISTORY_LIMIT = 20


@dataclass(slots=True)
class SessionConfig:
    """What the client configured (the pipeline's view of ``session.update``)."""

    turn: TurnConfig = field(default_factory=TurnConfig)
    vad_enabled: bool = True
    create_response: bool = True
    interrupt_response: bool = True
    speculative_stt: bool = True
    transcribe_input: bool = False
    language: str | None = None
    transcription_prompt: str | None = None
    output_audio: bool = True
    #: Transcribe the turn while the person is still talking (VoxDialog's own event).
    partial_transcripts: bool = False
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    instructions: str = ""
    #: Tools the client declared (Realtime ``session.tools``); the LLM may call them.
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class ResponseOptions:
    """Per-response overrides from ``response.create``."""

    output_audio: bool | None = None
    instructions: str | None = None
    voice: VoiceSettings | None = None
    in_conversation: bool = True
    tools: tuple[ToolSpec, ...] | None = None
    #: Speak exactly this text instead of asking the brain (an agent's greeting).
    say: str | None = None


@dataclass(frozen=True, slots=True)
class _Partial:
    """The latest partial transcription: of which turn, at what audio time."""

    item_id: str
    at_ms: int
    task: asyncio.Task[None]


class VoiceSession:
    """The per-session pipeline. Call ``run()`` in a task; feed it with the other methods."""

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
    ) -> None:
        self.info = info
        # Context carried over from an earlier connection of the same conversation.
        self._prior = tuple(prior)
        self.config = config
        self._vad = vad
        self._stt = stt
        self._tts = tts
        self._brain = brain
        self._emit = emit
        self._recorder = recorder
        self._clock = clock or MonotonicClock()
        self.conversation = Conversation(max_items=max_items)
        frame_ms = vad.frame_samples * 1000 / PIPELINE_RATE
        self._frame_bytes = vad.frame_samples * 2
        self._detector = TurnDetector(config.turn, frame_ms=frame_ms, bytes_per_ms=_BYTES_PER_MS)
        self._pending = bytearray()
        self._manual = ManualBuffer(vad, bytes_per_ms=_BYTES_PER_MS, max_ms=_MAX_MANUAL_BUFFER_MS)
        self._item_id: str | None = None
        self._speculation: tuple[int, asyncio.Task[Transcript | ProviderError]] | None = None
        self._transcripts: dict[str, asyncio.Task[None]] = {}
        self._responder = Responder(
            conversation=self.conversation,
            emit=emit,
            clock=self._clock,
            record_message=self._record_message,
            record_command=self._record_command,
        )
        self._partial: _Partial | None = None
        self._speech_end_wall: dict[str, float] = {}
        self._last_voiced_wall = 0.0
        self._tg: asyncio.TaskGroup | None = None
        self._closed = asyncio.Event()
        self._running = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Own the session's tasks until ``close()``."""
        await self._record(self._recorder.session_started(self.info) if self._recorder else None)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._running.set()
                await self._closed.wait()
                for task in list(self._transcripts.values()):
                    task.cancel()
                self._responder.abandon()
                if self._partial is not None:
                    self._partial.task.cancel()
                if self._speculation:
                    self._speculation[1].cancel()
        finally:
            self._tg = None
            if self._recorder:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._recorder.session_ended(self.info.session_id))

    def close(self) -> None:
        """Stop the session; ``run()`` returns once its tasks are gone."""
        self._closed.set()

    async def rebind(self, *, stt: STT, tts: TTS, brain: BrainSession, info: SessionInfo) -> None:
        """Answer from now on with other stages (the session's agent changed); record it.

        A response in progress finishes with the stages it started with.
        """
        self._stt, self._tts, self._brain, self.info = stt, tts, brain, info
        await self._record(self._recorder.session_started(info) if self._recorder else None)

    @property
    def is_fresh(self) -> bool:
        """Nothing said yet: no items, no response, no turn under way, no earlier context."""
        return (
            not self._prior
            and not len(self.conversation)
            and self._responder.active is None
            and not (self._detector.speaking or self._detector.in_speech)
            and not len(self._manual)
        )

    async def greet(self, text: str) -> bool:
        """Speak ``text`` as the assistant's opening line, only while the session is fresh.

        Returns whether the greeting started; a person already talking (or a client that
        already asked for a response) wins and nothing is said.
        """
        await self._running.wait()
        if not text.strip() or not self.is_fresh:
            return False
        await self.create_response(ResponseOptions(say=text))
        return True

    def apply_config(self, config: SessionConfig) -> None:
        """Take new settings (from ``session.update``)."""
        if not config.vad_enabled and self.config.vad_enabled:
            self._detector.reset()
        self.config = config
        self._detector.update(config.turn)

    @property
    def response_active(self) -> bool:
        """Whether a response is being generated."""
        return self._responder.active is not None

    # --- input audio ----------------------------------------------------------------------

    async def append_audio(self, pcm: bytes) -> None:
        """Feed PCM16 at the pipeline rate (16 kHz)."""
        await self._running.wait()
        if not self.config.vad_enabled:
            step = _FRAMES_PER_YIELD * self._frame_bytes
            for start in range(0, len(pcm), step):
                if start:
                    await asyncio.sleep(0)
                piece = pcm[start : start + step]
                if self._manual.append(piece, threshold=self.config.turn.threshold):
                    AUDIO_FRAMES_DROPPED.labels(DROP_BUFFER_FULL).inc()
            return
        self._pending += pcm
        frame = self._frame_bytes
        frames = 0
        while len(self._pending) >= frame:
            frames += 1
            if frames % _FRAMES_PER_YIELD == 0:
                # A large append must not hold the event loop (and every other session) up.
                await asyncio.sleep(0)
            chunk = bytes(self._pending[:frame])
            del self._pending[:frame]
            self._detector.agent_audible = self._agent_audible()
            probability = self._vad.speech_probability(chunk)
            events = self._detector.push(chunk, probability)
            if self._detector.speaking:
                # When the last voiced frame arrived: "end of speech" for the latency figures.
                self._last_voiced_wall = self._clock.now()
            for event in events:
                await self._on_turn_event(event)
            self._maybe_partial()

    async def _on_turn_event(self, event: object) -> None:
        match event:
            case TurnSpeechStarted(audio_start_ms=start):
                self._item_id = new_id("item")
                await self._emit(SpeechStarted(self._item_id, start))
                await self._barge_in()
            case SilenceBegan(clip=clip):
                self._start_speculation(clip)
            case SpeechResumed():
                self._drop_speculation()
            case TurnEnded() as ended:
                await self._turn_ended(ended)

    def _agent_audible(self) -> bool:
        return self._responder.audible()

    async def _barge_in(self) -> None:
        if self.config.interrupt_response:
            await self._responder.interrupt()

    def _maybe_partial(self) -> None:
        """Start transcribing the turn so far, now and then, while the person talks.

        At most one at a time per session, one per ``_PARTIAL_EVERY_MS`` of audio, and none
        while the speech model is busy: partial text must never delay anyone's final one.
        """
        if not (self.config.partial_transcripts and self.config.transcribe_input):
            return
        item_id, now = self._item_id, self._detector.now_ms
        if item_id is None or not self._detector.speaking or self._tg is None:
            return
        last = self._partial
        if last is not None and not last.task.done():
            return
        if last is not None and last.item_id == item_id and now - last.at_ms < _PARTIAL_EVERY_MS:
            return
        if getattr(self._stt, "busy", False):
            return
        clip = self._detector.turn_audio()
        if len(clip) < _PARTIAL_MIN_MS * _BYTES_PER_MS:
            return
        task = self._tg.create_task(
            self._transcribe_partial(item_id, clip), context=self._log_context(turn_id=item_id)
        )
        self._partial = _Partial(item_id, now, task)

    async def _transcribe_partial(self, item_id: str, clip: bytes) -> None:
        result = await self._transcribe_quietly(clip)
        # Only while that turn is still being spoken: its final transcript comes next anyway.
        if isinstance(result, ProviderError) or self._item_id != item_id or not result.text:
            return
        await self._emit(TranscriptionPartial(item_id, result.text))

    def _start_speculation(self, clip: bytes) -> None:
        if not self.config.speculative_stt or self._tg is None:
            return
        self._drop_speculation()
        task = self._tg.create_task(
            self._transcribe_quietly(clip), context=self._log_context(turn_id=self._item_id)
        )
        self._speculation = (len(clip), task)

    def _drop_speculation(self) -> None:
        if self._speculation is not None:
            self._speculation[1].cancel()
            self._speculation = None

    async def _turn_ended(self, ended: TurnEnded) -> None:
        end_of_turn_ms = round((self._clock.now() - self._last_voiced_wall) * 1000, 1)
        item_id = self._item_id or new_id("item")
        self._item_id = None
        self._speech_end_wall[item_id] = self._last_voiced_wall
        while len(self._speech_end_wall) > _KEPT_TURNS:
            self._speech_end_wall.pop(next(iter(self._speech_end_wall)))
        await self._emit(SpeechStopped(item_id, ended.audio_end_ms))
        speculation, self._speculation = self._speculation, None
        reuse = speculation[1] if speculation and not ended.forced else None
        if speculation and reuse is None:
            speculation[1].cancel()
        await self._commit_audio(
            item_id,
            ended.clip,
            speculative=reuse,
            respond=self.config.create_response,
            timings={"end_of_turn_ms": end_of_turn_ms},
        )

    # --- client commands ------------------------------------------------------------------

    async def commit(self, *, event_id: str | None = None) -> None:
        """``input_audio_buffer.commit``: the buffered audio becomes a user item."""
        await self._running.wait()
        if len(self._manual) < _MIN_COMMIT_MS * _BYTES_PER_MS:
            await self._emit(
                SessionProblem(
                    "input_audio_buffer_commit_empty",
                    f"Expected at least {_MIN_COMMIT_MS}ms of audio, but buffer only has "
                    f"{len(self._manual) / _BYTES_PER_MS:.2f}ms of audio.",
                    event_id=event_id,
                )
            )
            return
        clip, speech = self._manual.take(
            pad_before_ms=self.config.turn.prefix_padding_ms, pad_after_ms=_SPEECH_TAIL_MS
        )
        await self._commit_audio(
            new_id("item"), clip, speculative=None, respond=False, speech=speech
        )

    async def clear_input(self) -> None:
        """``input_audio_buffer.clear``."""
        await self._running.wait()
        self._manual.clear()
        self._pending.clear()
        self._detector.reset()
        self._drop_speculation()
        await self._emit(InputCleared())

    async def add_item(
        self, item: Item, *, previous_item_id: str | None = None, event_id: str | None = None
    ) -> None:
        """``conversation.item.create``."""
        await self._running.wait()
        try:
            prev = self.conversation.add(item, previous_item_id=previous_item_id)
        except KeyError:
            await self._emit(
                SessionProblem(
                    "item_not_found",
                    f"Item with id '{previous_item_id}' not found.",
                    param="previous_item_id",
                    event_id=event_id,
                )
            )
            return
        await self._emit(ItemAdded(item, prev))
        if item.type == "message" and item.text:
            await self._record_message(item)

    async def delete_item(self, item_id: str, *, event_id: str | None = None) -> None:
        """``conversation.item.delete``."""
        await self._running.wait()
        if not self.conversation.delete(item_id):
            await self._emit(
                SessionProblem(
                    "item_not_found",
                    f"Item with id '{item_id}' not found.",
                    param="item_id",
                    event_id=event_id,
                )
            )
            return
        await self._emit(ItemDeleted(item_id))
        if self._recorder:
            await self._record(self._recorder.message_deleted(self.info.session_id, item_id))

    async def truncate(
        self, item_id: str, audio_end_ms: int, *, event_id: str | None = None
    ) -> None:
        """``conversation.item.truncate``: the client played only ``audio_end_ms`` of it."""
        await self._running.wait()
        item = self.conversation.get(item_id)
        if item is None or item.role != "assistant":
            await self._emit(
                SessionProblem(
                    "item_not_found",
                    f"Assistant item '{item_id}' not found.",
                    param="item_id",
                    event_id=event_id,
                )
            )
            return
        if audio_end_ms < 0 or audio_end_ms > item.audio_ms + 1:
            await self._emit(
                SessionProblem(
                    "invalid_value",
                    f"audio_end_ms {audio_end_ms} is beyond the item's "
                    f"{int(item.audio_ms)}ms of audio.",
                    param="audio_end_ms",
                    event_id=event_id,
                )
            )
            return
        await self._responder.truncate(item, audio_end_ms)
        await self._emit(ItemTruncated(item_id, audio_end_ms))
        await self._record_message(item)

    async def create_response(
        self, options: ResponseOptions | None = None, *, event_id: str | None = None
    ) -> None:
        """``response.create`` (or a turn's automatic response)."""
        await self._running.wait()
        active = self._responder.active
        if active is not None:
            await self._emit(
                SessionProblem(
                    "conversation_already_has_active_response",
                    f"Conversation already has an active response in progress: "
                    f"{active.response_id}. Wait until the response is finished before "
                    "creating a new one.",
                    event_id=event_id,
                )
            )
            return
        options = options or ResponseOptions()
        audio = self.config.output_audio if options.output_audio is None else options.output_audio
        response = self._responder.begin(audio=audio)
        user = self.conversation.last_message("user")
        response.task = self._spawn(
            self._responder.run(response, lambda: self._plan(options, audio=audio)),
            turn_id=user.id if user else None,
            response_id=response.response_id,
        )

    async def cancel_response(self, *, event_id: str | None = None) -> None:
        """``response.cancel``."""
        await self._running.wait()
        if self._responder.active is None:
            await self._emit(
                SessionProblem(
                    "response_cancel_not_active",
                    "Cancellation failed: no active response found.",
                    event_id=event_id,
                )
            )
            return
        await self._responder.cancel("client_cancelled")

    # --- the turn -------------------------------------------------------------------------

    async def _commit_audio(
        self,
        item_id: str,
        clip: bytes,
        *,
        speculative: asyncio.Task[Transcript | ProviderError] | None,
        respond: bool,
        timings: dict[str, float] | None = None,
        speech: bytes | None = None,
    ) -> None:
        """Add the user's turn and transcribe it (``speech``: just the part to transcribe)."""
        item = Item(
            id=item_id,
            role="user",
            kind="input_audio",
            audio=clip,
            audio_ms=len(clip) / _BYTES_PER_MS,
            timings=timings or {},
        )
        prev = self.conversation.add(item)
        self._forget_old_audio()
        await self._emit(InputCommitted(item, prev))
        self._transcripts[item_id] = self._spawn(
            self._finish_user_turn(item, speculative, respond, speech=speech), turn_id=item_id
        )

    async def _finish_user_turn(
        self,
        item: Item,
        speculative: asyncio.Task[Transcript | ProviderError] | None,
        respond: bool,
        *,
        speech: bytes | None = None,
    ) -> None:
        clip = (item.audio or b"") if speech is None else speech
        started = self._clock.now()
        try:
            result = await speculative if speculative else None
            if result is None or isinstance(result, ProviderError):
                # No speculation, or it failed: one clean attempt on the whole turn.
                result = await self._transcribe(clip)
            transcript = result
        except asyncio.CancelledError:
            if speculative and speculative.cancelled() and not self._closed.is_set():
                transcript = await self._transcribe(clip)
            else:
                raise
        except ProviderError as e:
            log.warning(
                "transcription failed", extra={"session_id": self.info.session_id, "error": str(e)}
            )
            await self._emit(TranscriptionFailed(item.id, str(e)))
            return
        finally:
            self._transcripts.pop(item.id, None)
        item.text = transcript.text
        wait_ms = (self._clock.now() - started) * 1000
        timings = {
            **item.timings,
            "stt_wait_ms": round(wait_ms, 1),
            "speculative": 1.0 if speculative else 0.0,
        }
        item.timings = timings
        observe_stage_timings(timings)
        if self.config.transcribe_input:
            await self._emit(TranscriptionCompleted(item.id, transcript.text, item.audio_ms / 1000))
        await self._record_message(item)
        if respond and transcript.text.strip():
            await self.create_response()

    async def _transcribe_quietly(self, clip: bytes) -> Transcript | ProviderError:
        # Speculation must never fail the TaskGroup: its error is handed to whoever awaits it.
        try:
            return await self._transcribe(clip)
        except ProviderError as e:
            return e
        except Exception as e:
            return ProviderError(f"transcription crashed: {type(e).__name__}", retryable=False)

    async def _transcribe(self, clip: bytes) -> Transcript:
        return await self._stt.transcribe(
            AudioChunk(clip, PIPELINE_RATE),
            language=self.config.language,
            prompt=self.config.transcription_prompt,
        )

    async def _plan(self, options: ResponseOptions, *, audio: bool) -> ReplyPlan:
        """What a response answers, once every committed user turn has its transcript."""
        pending = [t for t in self._transcripts.values() if t is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending)
        user = self.conversation.last_message("user")
        history = (*self._prior, *self.conversation.history())[-_HISTORY_LIMIT:]
        # What came after the user's message (client tool calls and their outputs) follows it.
        last_user = max((n for n, m in enumerate(history) if m.role == "user"), default=None)
        before = history if last_user is None else history[:last_user]
        after = () if last_user is None else history[last_user + 1 :]
        instructions = (
            options.instructions if options.instructions is not None else self.config.instructions
        )
        turn = BrainTurn(
            text=user.text or "" if user else "",
            history=before,
            instructions=instructions,
            client_tools=options.tools if options.tools is not None else self.config.tools,
            followups=after,
        )
        return ReplyPlan(
            turn=turn,
            brain=self._brain if options.say is None else ScriptedLine(options.say),
            tts=self._reply_tts() if audio else None,
            voice=options.voice or self.config.voice,
            user=user,
            speech_ended_at=self._speech_end_wall.pop(user.id, None) if user else None,
            in_conversation=options.in_conversation,
        )

    async def _record_command(self, user: Item | None, outcome: CommandOutcome) -> None:
        if self._recorder and user is not None:
            await self._record(
                self._recorder.command(self.info.session_id, user.id, user.text or "", outcome)
            )

    def _reply_tts(self) -> TTS:
        # A provider chain may hand out a per-reply view that keeps one voice for the reply.
        for_reply = getattr(self._tts, "for_reply", None)
        tts: TTS = for_reply() if callable(for_reply) else self._tts
        return tts

    # --- helpers --------------------------------------------------------------------------

    def _spawn(
        self, coro: Coroutine[Any, Any, None], **log_fields: str | None
    ) -> asyncio.Task[None]:
        if self._tg is None:
            coro.close()
            raise RuntimeError("session is not running")
        return self._tg.create_task(self._guarded(coro), context=self._log_context(**log_fields))

    def _log_context(self, **fields: str | None) -> contextvars.Context:
        # The task's log records (providers' included) carry the session and turn ids.
        return log_context(session_id=self.info.session_id, **fields)

    async def _guarded(self, coro: Coroutine[Any, Any, None]) -> None:
        # A bug in one turn must not end the session (or, via the TaskGroup, its siblings).
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("turn failed", extra={"session_id": self.info.session_id})
            await self._emit(
                SessionProblem("server_error", "The server hit an error.", type="server_error")
            )

    def _forget_old_audio(self) -> None:
        # Raw user audio is large (32 kB a second): keep it for the recent turns only, so a
        # long session's memory stays bounded. Their transcripts stay.
        with_audio = [i for i in self.conversation if i.audio is not None]
        for item in with_audio[:-_KEPT_TURNS]:
            item.audio = None

    async def _record_message(self, item: Item) -> None:
        if self._recorder is None or item.text is None:
            return
        record = MessageRecord(
            session_id=self.info.session_id,
            item_id=item.id,
            role=item.role,
            text=item.text,
            status=item.status,
            audio_ms=item.audio_ms or None,
            timings=dict(item.timings),
        )
        await self._record(self._recorder.message(record))

    async def _record(self, coro: Coroutine[Any, Any, None] | None) -> None:
        if coro is None:
            return
        try:
            await coro
        except Exception:
            log.exception("recording failed", extra={"session_id": self.info.session_id})


def with_turn(config: SessionConfig, **changes: Any) -> SessionConfig:
    """A copy of ``config`` with turn parameters changed."""
    return replace(config, turn=replace(config.turn, **changes))
