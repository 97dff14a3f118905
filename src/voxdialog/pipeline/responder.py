"""Responder: the assistant's side of one session.

At most one response runs at a time. The responder streams it (brain -> sentences -> TTS),
keeps track of what the person can still hear, and cancels it on a barge-in or a client's
request, cutting the stored text to what was actually heard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from voxdialog.brain.base import BrainSession, BrainTurn, ClientToolCall, CommandOutcome
from voxdialog.observability.metrics import BARGE_INS, TURNS, observe_stage_timings
from voxdialog.observability.stages import FirstAudioTimer
from voxdialog.pipeline.clock import Clock
from voxdialog.pipeline.conversation import Conversation, Item
from voxdialog.pipeline.events import (
    FunctionCallAdded,
    ResponseAudio,
    ResponseEnded,
    ResponseStarted,
    ResponseText,
    SessionEvent,
    SessionProblem,
)
from voxdialog.pipeline.ids import new_id
from voxdialog.pipeline.reply import (
    AudioOut,
    OutcomeOut,
    ReplyProgress,
    TextOut,
    ToolCallOut,
    run_reply,
)
from voxdialog.providers.base import TTS, ProviderError, VoiceSettings

log = logging.getLogger(__name__)

Emit = Callable[[SessionEvent], Awaitable[None]]
RecordMessage = Callable[[Item], Awaitable[None]]
RecordCommand = Callable[[Item | None, CommandOutcome], Awaitable[None]]
#: Replies whose per-sentence audio spans are kept, so a late truncate can still cut them.
_KEPT_PROGRESS = 8


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """What one response needs, gathered once the turn it answers is transcribed.

    Attributes:
        turn: What the brain is asked (the user's text, history, instructions, tools).
        brain: Who answers (the session's brain, or a fixed line such as a greeting).
        tts: The per-reply TTS, or None for a text-only response.
        voice: Voice, speed and volume.
        user: The user item answered, if any (command records and timings refer to it).
        speech_ended_at: When that user stopped speaking (clock seconds), for the latency mark.
        in_conversation: Whether the reply becomes part of the conversation.
    """

    turn: BrainTurn
    brain: BrainSession
    tts: TTS | None
    voice: VoiceSettings
    user: Item | None = None
    speech_ended_at: float | None = None
    in_conversation: bool = True


@dataclass(slots=True)
class Response:
    """The response in progress."""

    response_id: str
    item: Item
    progress: ReplyProgress
    task: asyncio.Task[None] | None = None
    calls: list[Item] = field(default_factory=list)
    tts_timer: FirstAudioTimer | None = None


class Responder:
    """Runs the session's responses, one at a time, and knows what the person has heard.

    Args:
        conversation: The session's conversation (replies and tool calls are added to it).
        emit: Where response events go.
        clock: The session's clock (playback position is estimated from it).
        record_message: Stores a finished or cut assistant message.
        record_command: Stores what the brain did for a user turn.
    """

    def __init__(
        self,
        *,
        conversation: Conversation,
        emit: Emit,
        clock: Clock,
        record_message: RecordMessage,
        record_command: RecordCommand,
    ) -> None:
        self._conversation = conversation
        self._emit = emit
        self._clock = clock
        self._record_message = record_message
        self._record_command = record_command
        self.active: Response | None = None
        self._progress: dict[str, ReplyProgress] = {}
        self._playback_start = 0.0
        self._audible_until = 0.0

    def audible(self) -> bool:
        """Whether the assistant is generating, or the client is still playing its audio."""
        return self.active is not None or self._clock.now() < self._audible_until

    def begin(self, *, audio: bool) -> Response:
        """A new response (not yet running): the caller runs ``run()`` for it in a task."""
        item = Item(
            id=new_id("item"),
            role="assistant",
            kind="output_audio" if audio else "output_text",
            status="in_progress",
            text="",
        )
        self.active = Response(new_id("resp"), item, ReplyProgress())
        return self.active

    async def run(self, response: Response, plan: Callable[[], Awaitable[ReplyPlan]]) -> None:
        """Produce ``response`` from the plan (awaited first: it may wait for transcripts)."""
        prepared = await plan()
        item = response.item
        if prepared.in_conversation:
            self._conversation.add(item)
        await self._emit(ResponseStarted(response.response_id, item, prepared.tts is not None))
        self._progress[item.id] = response.progress
        while len(self._progress) > _KEPT_PROGRESS:
            self._progress.pop(next(iter(self._progress)))
        try:
            await self._stream(response, prepared)
        except ProviderError as e:
            log.warning("response failed", extra={"error": str(e)})
            await self._end(response, "failed", error=str(e))
            return
        await self._end(response, "completed")

    async def cancel(self, reason: str) -> None:
        """Stop the active response now and report it ``cancelled`` (no-op if none)."""
        response = self.active
        if response is None or response.task is None:
            return
        if reason == "turn_detected":
            BARGE_INS.inc()
        response.task.cancel()
        await asyncio.wait([response.task])
        if self.active is response:
            await self._end(response, "cancelled", reason=reason)

    def abandon(self) -> None:
        """Cancel the active response's task without waiting (the session is closing)."""
        if self.active is not None and self.active.task is not None:
            self.active.task.cancel()

    async def interrupt(self) -> None:
        """The person started talking: cancel the response, or cut what is still playing."""
        if self.active is not None:
            await self.cancel("turn_detected")
            return
        if self._clock.now() >= self._audible_until:
            return
        # Generation had finished but the client is still playing it: cut the stored text to
        # what was heard so far (a client truncate, if it comes, refines this).
        last = self._conversation.last_message("assistant")
        if last is not None and last.id in self._progress:
            played = (self._clock.now() - self._playback_start) * 1000
            last.text = self._progress[last.id].text_heard(played)
            last.status = "incomplete"
            await self._record_message(last)
        self._audible_until = 0.0

    async def truncate(self, item: Item, audio_end_ms: int) -> None:
        """The client played only ``audio_end_ms`` of ``item``: keep just that (and its text)."""
        if self.active is not None and self.active.item.id == item.id:
            await self.cancel("client_cancelled")
        progress = self._progress.get(item.id)
        if progress is not None:
            item.text = progress.text_heard(audio_end_ms)
        item.audio_ms = audio_end_ms
        item.status = "incomplete"
        self._audible_until = 0.0

    # --- one reply ------------------------------------------------------------------------

    async def _stream(self, response: Response, plan: ReplyPlan) -> None:
        item = response.item
        first_audio = True
        response.tts_timer = FirstAudioTimer(plan.tts) if plan.tts is not None else None
        async for out in run_reply(
            plan.brain,
            plan.turn,
            tts=response.tts_timer,
            voice=plan.voice,
            progress=response.progress,
        ):
            match out:
                case TextOut(text=text):
                    item.text = (item.text or "") + text
                    await self._emit(ResponseText(response.response_id, item.id, text))
                case AudioOut(chunk=chunk):
                    now = self._clock.now()
                    if first_audio:
                        first_audio = False
                        self._playback_start = max(now, self._audible_until)
                        self._note_first_audio(response, plan, now)
                    item.audio_ms += chunk.duration_ms
                    self._audible_until = self._playback_start + item.audio_ms / 1000
                    await self._emit(ResponseAudio(response.response_id, item.id, chunk))
                case ToolCallOut(call=call):
                    await self._add_call(response, call)
                case OutcomeOut(outcome=outcome) if outcome.entities.get("llm_error"):
                    # The person still hears an answer (fallback or apology); the client also
                    # learns that the language model could not be reached.
                    await self._emit(
                        SessionProblem(
                            "llm_unavailable",
                            "The language model could not be reached; the answer came without it.",
                            type="server_error",
                        )
                    )
                    await self._record_command(plan.user, outcome)
                case OutcomeOut(outcome=outcome):
                    await self._record_command(plan.user, outcome)

    async def _add_call(self, response: Response, call: ClientToolCall) -> None:
        item = Item(
            id=new_id("item"),
            type="function_call",
            role="assistant",
            kind="function_call",
            call_id=call.call_id,
            name=call.name,
            arguments=call.arguments,
        )
        self._conversation.add(item)
        response.calls.append(item)
        await self._emit(FunctionCallAdded(response.response_id, item))

    @staticmethod
    def _note_first_audio(response: Response, plan: ReplyPlan, now: float) -> None:
        timings: dict[str, float] = {}
        if plan.speech_ended_at is not None:
            timings["end_of_speech_to_first_audio_ms"] = round(
                (now - plan.speech_ended_at) * 1000, 1
            )
        response.item.timings = timings

    async def _end(
        self,
        response: Response,
        status: str,
        *,
        reason: str | None = None,
        error: str | None = None,
    ) -> None:
        if self.active is not response:
            return
        self.active = None
        TURNS.labels(status).inc()
        item = response.item
        item.status = "completed" if status == "completed" else "incomplete"
        item.text = response.progress.text_sent
        item.timings = {**item.timings, **_stage_timings(response)}
        observe_stage_timings(item.timings)
        if not item.text and not item.audio_ms:
            # A response that only called tools leaves no empty message behind.
            self._conversation.delete(item.id)
        await self._emit(
            ResponseEnded(
                response.response_id, item, status, reason, error, calls=tuple(response.calls)
            )
        )
        if item.text:
            await self._record_message(item)


def _stage_timings(response: Response) -> dict[str, float]:
    progress, timer = response.progress, response.tts_timer
    marks = (
        ("brain_first_ms", progress.brain_first_ms),
        ("tts_first_audio_ms", progress.tts_first_audio_ms),
        ("tts_first_chunk_ms", timer.first_chunk_ms if timer else None),
    )
    return {key: round(value, 1) for key, value in marks if value is not None}
