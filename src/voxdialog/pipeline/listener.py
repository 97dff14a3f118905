"""Listener: the person's side of a session. Frames in, turn events out.

It frames the audio for the VAD, runs the turn detector, starts a speculative transcription
when the person falls silent (dropped if they go on), and, when asked, transcribes the turn
so far now and then (partial transcripts). With turn detection off it only buffers the audio
for a manual commit (push-to-talk).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from voxdialog.audio.formats import PIPELINE_RATE
from voxdialog.clock import Clock
from voxdialog.observability.metrics import AUDIO_FRAMES_DROPPED, DROP_BUFFER_FULL
from voxdialog.pipeline.config import SessionConfig
from voxdialog.pipeline.events import SessionEvent, TranscriptionPartial
from voxdialog.pipeline.ids import new_id
from voxdialog.pipeline.manual import ManualBuffer
from voxdialog.pipeline.problems import CommitTooShort
from voxdialog.pipeline.scoring import FrameScorer, InlineScorer
from voxdialog.pipeline.transcriber import Attempt, Transcriber
from voxdialog.pipeline.turns import SilenceBegan, SpeechResumed, TurnDetector, TurnEnded
from voxdialog.pipeline.turns import SpeechStarted as TurnSpeechStarted
from voxdialog.providers.base import ProviderError, STTPriority, VADStream

T = TypeVar("T")
BYTES_PER_MS = PIPELINE_RATE * 2 // 1000
_MIN_COMMIT_MS = 100
_MAX_MANUAL_BUFFER_MS = 10 * 60 * 1000
# Audio kept after the last voiced frame of a manual commit, so the last word is not clipped.
_SPEECH_TAIL_MS = 300
# VAD frames scored between two yields to the event loop (about 2 s of audio, ~16 ms of work).
_FRAMES_PER_YIELD = 64
# Partial transcripts: how often while the person talks, and from how much speech on.
_PARTIAL_EVERY_MS = 1000
_PARTIAL_MIN_MS = 700


class Spawn(Protocol):
    """Starts a task owned by the session (``turn_id`` goes into its log records)."""

    def __call__(self, coro: Coroutine[Any, Any, T], *, turn_id: str | None) -> asyncio.Task[T]:
        """The running task."""
        ...


@dataclass(frozen=True, slots=True)
class SpeechBegan:
    """The person started talking; their turn will be the item ``item_id``."""

    item_id: str
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class TurnHeard:
    """The person finished a turn.

    Attributes:
        item_id: The id announced by ``SpeechBegan``.
        clip: The turn's audio (PCM16, pipeline rate).
        audio_end_ms: Audio time of its end.
        speculation: A transcription of the same audio started early, if it may be reused.
        end_of_turn_ms: Wall time from the last voiced frame to the decision.
        speech_ended_at: Clock time of the last voiced frame (for latency marks).
    """

    item_id: str
    clip: bytes
    audio_end_ms: int
    speculation: Attempt | None
    end_of_turn_ms: float
    speech_ended_at: float


Heard = SpeechBegan | TurnHeard


@dataclass(frozen=True, slots=True)
class _Partial:
    """The latest partial transcription: of which turn, at what audio time."""

    item_id: str
    at_ms: int
    task: asyncio.Task[None]


class Listener:
    """Turns a session's incoming audio into turns.

    Args:
        vad: The session's VAD stream.
        config: The session's configuration (``configure`` replaces it).
        transcriber: Speculative and partial transcriptions go through it.
        clock: For the end-of-speech latency marks.
        spawn: Starts speculative and partial transcriptions as session tasks.
        emit: Where partial transcripts go.
        agent_audible: Whether the assistant can be heard now (the cough guard applies then).
        scorer: Runs the VAD on the frames (``ThreadedScorer``: off the loop, shared by the
            process's sessions); inline by default.
    """

    def __init__(
        self,
        *,
        vad: VADStream,
        config: SessionConfig,
        transcriber: Transcriber,
        clock: Clock,
        spawn: Spawn,
        emit: Callable[[SessionEvent], Awaitable[None]],
        agent_audible: Callable[[], bool],
        scorer: FrameScorer | None = None,
    ) -> None:
        self._vad = vad
        self._scorer = scorer or InlineScorer()
        self._config = config
        self._transcriber = transcriber
        self._clock = clock
        self._spawn = spawn
        self._emit = emit
        self._agent_audible = agent_audible
        self._frame_bytes = vad.frame_samples * 2
        frame_ms = vad.frame_samples * 1000 / PIPELINE_RATE
        self._detector = TurnDetector(config.turn, frame_ms=frame_ms, bytes_per_ms=BYTES_PER_MS)
        self._pending = bytearray()
        self._manual = ManualBuffer(vad, bytes_per_ms=BYTES_PER_MS, max_ms=_MAX_MANUAL_BUFFER_MS)
        self._item_id: str | None = None
        self._speculation: tuple[int, Attempt] | None = None
        self._partial: _Partial | None = None
        self._last_voiced_at = 0.0

    @property
    def idle(self) -> bool:
        """No turn under way and nothing buffered for a manual commit."""
        detector = self._detector
        return not (detector.speaking or detector.in_speech) and not len(self._manual)

    def configure(self, config: SessionConfig) -> None:
        """Take new settings; turning detection off forgets a turn in progress."""
        if not config.vad_enabled and self._config.vad_enabled:
            self._detector.reset()
        self._config = config
        self._detector.update(config.turn)

    async def hear(self, pcm: bytes) -> AsyncIterator[Heard]:
        """Feed PCM16 at the pipeline rate; yields the turn events it completes."""
        if not self._config.vad_enabled:
            await self._buffer_for_commit(pcm)
            return
        self._pending += pcm
        whole = len(self._pending) - len(self._pending) % self._frame_bytes
        frames = [
            bytes(self._pending[start : start + self._frame_bytes])
            for start in range(0, whole, self._frame_bytes)
        ]
        del self._pending[:whole]
        for first in range(0, len(frames), _FRAMES_PER_YIELD):
            group = frames[first : first + _FRAMES_PER_YIELD]
            if first:
                # A large append must not hold the event loop (and every other session) up.
                await asyncio.sleep(0)
            scores = await self._scorer.score(self._vad, group)
            for frame, probability in zip(group, scores, strict=True):
                for heard in self._frame(frame, probability):
                    yield heard
                self._maybe_partial()

    def take_commit(self) -> tuple[bytes, bytes] | CommitTooShort:
        """Empty the manual buffer: (the whole clip, its speech with padding), if long enough."""
        if len(self._manual) < _MIN_COMMIT_MS * BYTES_PER_MS:
            return CommitTooShort(len(self._manual) / BYTES_PER_MS, _MIN_COMMIT_MS)
        return self._manual.take(
            pad_before_ms=self._config.turn.prefix_padding_ms, pad_after_ms=_SPEECH_TAIL_MS
        )

    def clear(self) -> None:
        """Forget all buffered audio and any turn in progress."""
        self._manual.clear()
        self._pending.clear()
        self._detector.reset()
        self._drop_speculation()

    def close(self) -> None:
        """Cancel the transcriptions this listener started."""
        if self._partial is not None:
            self._partial.task.cancel()
        self._drop_speculation()

    async def _buffer_for_commit(self, pcm: bytes) -> None:
        step = _FRAMES_PER_YIELD * self._frame_bytes
        for start in range(0, len(pcm), step):
            if start:
                await asyncio.sleep(0)
            dropped = self._manual.append(
                pcm[start : start + step], threshold=self._config.turn.threshold
            )
            if dropped:
                AUDIO_FRAMES_DROPPED.labels(DROP_BUFFER_FULL).inc()

    def _frame(self, frame: bytes, probability: float) -> list[Heard]:
        detector = self._detector
        detector.agent_audible = self._agent_audible()
        events = detector.push(frame, probability)
        if detector.speaking:
            # When the last voiced frame arrived: "end of speech" for the latency figures.
            self._last_voiced_at = self._clock.now()
        heard: list[Heard] = []
        for event in events:
            match event:
                case TurnSpeechStarted(audio_start_ms=start):
                    self._item_id = new_id("item")
                    heard.append(SpeechBegan(self._item_id, start))
                case SilenceBegan(clip=clip):
                    self._start_speculation(clip)
                case SpeechResumed():
                    self._drop_speculation()
                case TurnEnded() as ended:
                    heard.append(self._turn_ended(ended))
        return heard

    def _turn_ended(self, ended: TurnEnded) -> TurnHeard:
        item_id = self._item_id or new_id("item")
        self._item_id = None
        speculation, self._speculation = self._speculation, None
        reuse = speculation[1] if speculation and not ended.forced else None
        if speculation and reuse is None:
            speculation[1].cancel()
        return TurnHeard(
            item_id=item_id,
            clip=ended.clip,
            audio_end_ms=ended.audio_end_ms,
            speculation=reuse,
            end_of_turn_ms=round((self._clock.now() - self._last_voiced_at) * 1000, 1),
            speech_ended_at=self._last_voiced_at,
        )

    def _start_speculation(self, clip: bytes) -> None:
        if not self._config.speculative_stt:
            return
        self._drop_speculation()
        attempt = self._transcriber.attempt(clip, STTPriority.SPECULATIVE)
        task = self._spawn(attempt, turn_id=self._item_id)
        self._speculation = (len(clip), task)

    def _drop_speculation(self) -> None:
        if self._speculation is not None:
            self._speculation[1].cancel()
            self._speculation = None

    def _maybe_partial(self) -> None:
        """Start transcribing the turn so far, now and then, while the person talks.

        At most one at a time per session, one per ``_PARTIAL_EVERY_MS`` of audio, and none
        while the speech model is busy: partial text must never delay anyone's final one.
        """
        config = self._config
        if not (config.partial_transcripts and config.transcribe_input):
            return
        item_id, now = self._item_id, self._detector.now_ms
        if item_id is None or not self._detector.speaking:
            return
        last = self._partial
        if last is not None and not last.task.done():
            return
        if last is not None and last.item_id == item_id and now - last.at_ms < _PARTIAL_EVERY_MS:
            return
        if self._transcriber.busy:
            return
        clip = self._detector.turn_audio()
        if len(clip) < _PARTIAL_MIN_MS * BYTES_PER_MS:
            return
        task = self._spawn(self._transcribe_partial(item_id, clip), turn_id=item_id)
        self._partial = _Partial(item_id, now, task)

    async def _transcribe_partial(self, item_id: str, clip: bytes) -> None:
        result = await self._transcriber.attempt(clip, STTPriority.PARTIAL)
        # Only while that turn is still being spoken: its final transcript comes next anyway.
        if isinstance(result, ProviderError) or self._item_id != item_id or not result.text:
            return
        await self._emit(TranscriptionPartial(item_id, result.text))
