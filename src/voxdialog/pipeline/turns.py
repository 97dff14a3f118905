"""TurnDetector: VAD probabilities per frame in, turn events out.

Time here is audio time (milliseconds of audio since the session's first sample), so the
detector is deterministic and needs no clock: tests feed frames and read events.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """Turn-taking parameters (milliseconds unless noted)."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    min_speech_ms: int = 150
    max_utterance_ms: int = 45_000
    #: While the agent is audible, speech must last this long before it counts (cough guard).
    interrupt_min_speech_ms: int = 250
    #: Silence that may pass inside a speech onset before the onset is abandoned as noise.
    onset_gap_ms: int = 120
    #: Silence after which speculative transcription may start (within the silence window).
    speculation_delay_ms: int = 120
    #: Trailing audio kept after speech ends, so the last phoneme is not clipped.
    tail_ms: int = 150


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Speech confirmed; ``audio_start_ms`` includes the prefix padding."""

    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SilenceBegan:
    """Silence has lasted ``speculation_delay_ms``: a good moment to transcribe speculatively."""

    clip: bytes
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """Speech came back before the silence window ran out: speculation is void."""


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """The turn is over: ``clip`` is PCM16 from padding before onset to a short tail."""

    clip: bytes
    audio_start_ms: int
    audio_end_ms: int
    forced: bool = False


TurnEvent = SpeechStarted | SilenceBegan | SpeechResumed | TurnEnded


class _State(enum.Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    PAUSING = "pausing"


class TurnDetector:
    """Server-VAD turn taking over fixed-size frames of PCM16 audio.

    Args:
        config: Turn-taking parameters.
        frame_ms: Duration of one frame (Silero at 16 kHz: 32 ms).
        bytes_per_ms: PCM16 bytes per millisecond of audio (16 kHz: 32).
    """

    def __init__(self, config: TurnConfig, *, frame_ms: float, bytes_per_ms: int) -> None:
        self.config = config
        self._frame_ms = frame_ms
        self._bytes_per_ms = bytes_per_ms
        self._state = _State.QUIET
        self._now_ms = 0.0
        self._pad_frames = max(1, round(config.prefix_padding_ms / frame_ms))
        self._prefix: deque[bytes] = deque(maxlen=self._pad_frames)
        self._turn = bytearray()
        self._onset_ms = 0.0
        self._speech_ms = 0.0
        self._gap_ms = 0.0
        self._silence_start_ms = 0.0
        self._speculated = False
        self.agent_audible = False

    @property
    def in_speech(self) -> bool:
        """Whether a confirmed turn is in progress."""
        return self._state in (_State.SPEAKING, _State.PAUSING)

    @property
    def speaking(self) -> bool:
        """Whether the last frame was voiced, inside a turn."""
        return self._state in (_State.STARTING, _State.SPEAKING)

    def turn_audio(self) -> bytes:
        """The audio of the confirmed turn so far (with its prefix padding); empty outside one."""
        return bytes(self._turn) if self.in_speech else b""

    @property
    def now_ms(self) -> int:
        """Audio time consumed so far."""
        return int(self._now_ms)

    def reset(self) -> None:
        """Drop any turn in progress (e.g. ``input_audio_buffer.clear``)."""
        self._state = _State.QUIET
        self._turn.clear()
        self._prefix.clear()

    def update(self, config: TurnConfig) -> None:
        """Apply new parameters from the next frame on."""
        self.config = config

    def push(self, frame: bytes, probability: float) -> list[TurnEvent]:
        """Feed one frame and its speech probability; return the events it caused."""
        start_ms = self._now_ms
        self._now_ms += self._frame_ms
        cfg = self.config
        # Hysteresis as Silero recommends: leave speech only well below the threshold.
        if self._state in (_State.QUIET, _State.STARTING):
            speech = probability >= cfg.threshold
        else:
            speech = probability >= max(0.0, cfg.threshold - 0.15)
        match self._state:
            case _State.QUIET:
                return self._quiet(frame, speech, start_ms)
            case _State.STARTING:
                return self._starting(frame, speech)
            case _State.SPEAKING:
                return self._speaking(frame, speech, start_ms)
            case _State.PAUSING:
                return self._pausing(frame, speech)

    def _quiet(self, frame: bytes, speech: bool, start_ms: float) -> list[TurnEvent]:
        if not speech:
            self._prefix.append(frame)
            return []
        self._state = _State.STARTING
        self._onset_ms = start_ms
        self._speech_ms = self._frame_ms
        self._gap_ms = 0.0
        self._turn = bytearray(b"".join(self._prefix))
        self._prefix.clear()
        self._turn += frame
        return self._confirm_if_long_enough()

    def _starting(self, frame: bytes, speech: bool) -> list[TurnEvent]:
        self._turn += frame
        if speech:
            self._speech_ms += self._frame_ms
            self._gap_ms = 0.0
            return self._confirm_if_long_enough()
        self._gap_ms += self._frame_ms
        if self._gap_ms > self.config.onset_gap_ms:
            # A click or a cough: not a turn. Keep the recent audio as padding.
            tail = bytes(self._turn[-self._pad_frames * len(frame) :])
            self._state = _State.QUIET
            self._turn.clear()
            for i in range(0, len(tail), len(frame)):
                self._prefix.append(tail[i : i + len(frame)])
        return []

    def _confirm_if_long_enough(self) -> list[TurnEvent]:
        needed = self.config.min_speech_ms
        if self.agent_audible:
            needed = max(needed, self.config.interrupt_min_speech_ms)
        if self._speech_ms < needed:
            return []
        self._state = _State.SPEAKING
        start = max(0.0, self._onset_ms - self.config.prefix_padding_ms)
        return [SpeechStarted(audio_start_ms=int(start))]

    def _speaking(self, frame: bytes, speech: bool, start_ms: float) -> list[TurnEvent]:
        self._turn += frame
        if not speech:
            self._state = _State.PAUSING
            self._silence_start_ms = start_ms
            self._speculated = False
        return self._check_max()

    def _pausing(self, frame: bytes, speech: bool) -> list[TurnEvent]:
        self._turn += frame
        events: list[TurnEvent] = []
        if speech:
            self._state = _State.SPEAKING
            if self._speculated:
                events.append(SpeechResumed())
            self._speculated = False
            return events + self._check_max()
        silence = self._now_ms - self._silence_start_ms
        if silence >= self.config.silence_duration_ms:
            return [self._end_turn(forced=False)]
        if not self._speculated and silence >= self.config.speculation_delay_ms:
            self._speculated = True
            events.append(SilenceBegan(clip=self._clip(), audio_end_ms=int(self._silence_start_ms)))
        return events + self._check_max()

    def _check_max(self) -> list[TurnEvent]:
        if self._now_ms - self._onset_ms >= self.config.max_utterance_ms:
            if self._state is _State.SPEAKING:
                self._silence_start_ms = self._now_ms
            return [self._end_turn(forced=True)]
        return []

    def _clip(self) -> bytes:
        # The clip runs to a short tail past the end of speech, at most to the present.
        start = max(0.0, self._onset_ms - self.config.prefix_padding_ms)
        kept_start = self._now_ms - len(self._turn) / self._bytes_per_ms
        end = min(self._now_ms, self._silence_start_ms + self.config.tail_ms)
        offset = int(max(0.0, start - kept_start) * self._bytes_per_ms)
        length = int((end - max(start, kept_start)) * self._bytes_per_ms)
        length -= length % 2
        offset -= offset % 2
        return bytes(self._turn[offset : offset + length])

    def _end_turn(self, *, forced: bool) -> TurnEnded:
        clip = self._clip()
        start = max(0.0, self._onset_ms - self.config.prefix_padding_ms)
        ended = TurnEnded(
            clip=clip,
            audio_start_ms=int(start),
            audio_end_ms=int(self._silence_start_ms),
            forced=forced,
        )
        self._state = _State.QUIET
        self._turn.clear()
        self._prefix.clear()
        return ended
