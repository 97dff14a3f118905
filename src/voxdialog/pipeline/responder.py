"""Responder: the assistant's side of one session.

At most one response runs at a time. The responder streams it (brain -> sentences -> TTS),
keeps track of what the person can still hear, and cancels it on a barge-in or a client's
request, cutting the stored text to what was actually heard. It calls nobody back: every
method yields or returns its outcomes (events for the client, messages and commands to
store) and the session routes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from voxdialog.brain.base import BrainSession, BrainTurn, ClientToolCall, CommandOutcome
from voxdialog.clock import Clock
from voxdialog.observability.metrics import BARGE_INS, TURNS, observe_stage_timings
from voxdialog.observability.stages import FirstAudioTimer
from voxdialog.pipeline.conversation import Conversation, Item, ItemView
from voxdialog.pipeline.events import (
    FunctionCallAdded,
    LLMUnavailable,
    ResponseAudio,
    ResponseEnded,
    ResponseStarted,
    ResponseText,
    SessionEvent,
)
from voxdialog.pipeline.ids import new_id
from voxdialog.pipeline.reply import (
    AudioOut,
    LLMDown,
    OutcomeOut,
    ReplyProgress,
    TextOut,
    ToolCallOut,
    run_reply,
)
from voxdialog.providers.base import TTS, ProviderError, VoiceSettings

log = logging.getLogger(__name__)

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
    user: ItemView | None = None
    speech_ended_at: float | None = None
    in_conversation: bool = True


@dataclass(frozen=True, slots=True)
class StoreMessage:
    """Store this message as it now is (a reply finished, or was cut to what was heard)."""

    item: ItemView


@dataclass(frozen=True, slots=True)
class StoreCommand:
    """Store what the brain did for the user turn ``user``."""

    user: ItemView | None
    outcome: CommandOutcome


Outcome = SessionEvent | StoreMessage | StoreCommand
"""What the responder produces: events for the client and records to store."""


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
        clock: The session's clock (playback position is estimated from it).
    """

    def __init__(self, *, conversation: Conversation, clock: Clock) -> None:
        self._conversation = conversation
        self._clock = clock
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

    async def run(self, response: Response, plan: ReplyPlan) -> AsyncGenerator[Outcome, None]:
        """Produce ``response`` as planned; the caller routes each outcome as it comes."""
        item = response.item
        if plan.in_conversation:
            self._conversation.add(item)
        yield ResponseStarted(response.response_id, item.snapshot(), plan.tts is not None)
        self._progress[item.id] = response.progress
        while len(self._progress) > _KEPT_PROGRESS:
            self._progress.pop(next(iter(self._progress)))
        try:
            async for out in self._stream(response, plan):
                yield out
        except ProviderError as e:
            log.warning("response failed", extra={"error": str(e)})
            for out in self._end(response, "failed", error=str(e)):
                yield out
            return
        for out in self._end(response, "completed"):
            yield out

    async def cancel(self, reason: str) -> list[Outcome]:
        """Stop the active response now and report it ``cancelled`` (nothing if none)."""
        response = self.active
        if response is None or response.task is None:
            return []
        if reason == "turn_detected":
            BARGE_INS.inc()
        response.task.cancel()
        await asyncio.wait([response.task])
        if self.active is not response:
            return []
        return self._end(response, "cancelled", reason=reason)

    def abandon(self) -> None:
        """Cancel the active response's task without waiting (the session is closing)."""
        if self.active is not None and self.active.task is not None:
            self.active.task.cancel()

    async def interrupt(self) -> list[Outcome]:
        """The person started talking: cancel the response, or cut what is still playing."""
        if self.active is not None:
            return await self.cancel("turn_detected")
        if self._clock.now() >= self._audible_until:
            return []
        # Generation had finished but the client is still playing it: cut the stored text to
        # what was heard so far (a client truncate, if it comes, refines this).
        self._audible_until = 0.0
        last = self._conversation.last_message("assistant")
        if last is None or last.id not in self._progress:
            return []
        played = (self._clock.now() - self._playback_start) * 1000
        last.text = self._progress[last.id].text_heard(played)
        last.status = "incomplete"
        return [StoreMessage(last.snapshot())]

    async def truncate(self, item: Item, audio_end_ms: int) -> list[Outcome]:
        """The client played only ``audio_end_ms`` of ``item``: keep just that (and its text)."""
        outcomes: list[Outcome] = []
        if self.active is not None and self.active.item.id == item.id:
            outcomes = await self.cancel("client_cancelled")
        progress = self._progress.get(item.id)
        if progress is not None:
            item.text = progress.text_heard(audio_end_ms)
        item.audio_ms = audio_end_ms
        item.status = "incomplete"
        self._audible_until = 0.0
        return outcomes

    # --- one reply ------------------------------------------------------------------------

    async def _stream(self, response: Response, plan: ReplyPlan) -> AsyncIterator[Outcome]:
        item, rid = response.item, response.response_id
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
                    yield ResponseText(rid, item.id, text)
                case AudioOut(chunk=chunk):
                    now = self._clock.now()
                    if first_audio:
                        first_audio = False
                        self._playback_start = max(now, self._audible_until)
                        self._note_first_audio(response, plan, now)
                    item.audio_ms += chunk.duration_ms
                    self._audible_until = self._playback_start + item.audio_ms / 1000
                    yield ResponseAudio(rid, item.id, chunk)
                case ToolCallOut(call=call):
                    yield self._add_call(response, call)
                case LLMDown(error=error):
                    # The person still hears an answer (fallback or apology); the client also
                    # learns that the language model could not be reached.
                    yield LLMUnavailable(rid, error)
                case OutcomeOut(outcome=outcome):
                    yield StoreCommand(plan.user, outcome)

    def _add_call(self, response: Response, call: ClientToolCall) -> FunctionCallAdded:
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
        return FunctionCallAdded(response.response_id, item.snapshot())

    @staticmethod
    def _note_first_audio(response: Response, plan: ReplyPlan, now: float) -> None:
        timings: dict[str, float] = {}
        if plan.speech_ended_at is not None:
            timings["end_of_speech_to_first_audio_ms"] = round(
                (now - plan.speech_ended_at) * 1000, 1
            )
        response.item.timings = timings

    def _end(
        self,
        response: Response,
        status: str,
        *,
        reason: str | None = None,
        error: str | None = None,
    ) -> list[Outcome]:
        if self.active is not response:
            return []
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
        view = item.snapshot()
        calls = tuple(call.snapshot() for call in response.calls)
        ended = ResponseEnded(response.response_id, view, status, reason, error, calls=calls)
        # Stored first: the client's response.done acknowledges a committed message.
        return [StoreMessage(view), ended] if item.text else [ended]


def _stage_timings(response: Response) -> dict[str, float]:
    progress, timer = response.progress, response.tts_timer
    marks = (
        ("brain_first_ms", progress.brain_first_ms),
        ("tts_first_audio_ms", progress.tts_first_audio_ms),
        ("tts_first_chunk_ms", timer.first_chunk_ms if timer else None),
    )
    return {key: round(value, 1) for key, value in marks if value is not None}
