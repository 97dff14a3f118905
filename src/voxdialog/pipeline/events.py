"""What a VoiceSession tells its transport: a closed union of frozen dataclasses.

Items travel as ``ItemView`` snapshots: an event never changes after it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxdialog.audio.formats import AudioChunk
from voxdialog.pipeline.conversation import ItemView


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The user started talking; ``item_id`` is the id their message will get."""

    item_id: str
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """The user stopped talking."""

    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class InputCommitted:
    """The input buffer became a user item."""

    item: ItemView
    previous_item_id: str | None


@dataclass(frozen=True, slots=True)
class InputCleared:
    """The input buffer was cleared."""


@dataclass(frozen=True, slots=True)
class ItemAdded:
    """An item was added to the conversation by the client."""

    item: ItemView
    previous_item_id: str | None


@dataclass(frozen=True, slots=True)
class ItemDeleted:
    """An item was deleted."""

    item_id: str


@dataclass(frozen=True, slots=True)
class ItemTruncated:
    """An assistant item's audio was cut at ``audio_end_ms``."""

    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class TranscriptionCompleted:
    """The user's audio was transcribed."""

    item_id: str
    transcript: str
    audio_seconds: float


@dataclass(frozen=True, slots=True)
class TranscriptionPartial:
    """What the user has said so far in the turn still in progress (it may still change)."""

    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class TranscriptionFailed:
    """Transcription failed; the turn gets no response."""

    item_id: str
    message: str


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    """A response began; ``item`` is its (empty, in progress) assistant message."""

    response_id: str
    item: ItemView
    audio: bool


@dataclass(frozen=True, slots=True)
class ResponseText:
    """More text of the response (the transcript for audio responses)."""

    response_id: str
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class ResponseAudio:
    """More audio of the response (at the TTS rate; the transport encodes it)."""

    response_id: str
    item_id: str
    chunk: AudioChunk


@dataclass(frozen=True, slots=True)
class FunctionCallAdded:
    """The response called a client tool (a complete ``function_call`` item)."""

    response_id: str
    item: ItemView


@dataclass(frozen=True, slots=True)
class ResponseEnded:
    """The response is over: ``status`` completed | cancelled | failed."""

    response_id: str
    item: ItemView
    status: str
    reason: str | None = None
    error: str | None = None
    #: Client tool calls the response made (already announced by FunctionCallAdded).
    calls: tuple[ItemView, ...] = ()


@dataclass(frozen=True, slots=True)
class LLMUnavailable:
    """The language model failed during a response; the answer came without it."""

    response_id: str
    error: str


@dataclass(frozen=True, slots=True)
class TurnFailed:
    """A turn or response hit a bug; it was abandoned and the session goes on."""

    message: str


SessionEvent = (
    SpeechStarted
    | SpeechStopped
    | InputCommitted
    | InputCleared
    | ItemAdded
    | ItemDeleted
    | ItemTruncated
    | TranscriptionCompleted
    | TranscriptionPartial
    | TranscriptionFailed
    | ResponseStarted
    | ResponseText
    | ResponseAudio
    | FunctionCallAdded
    | ResponseEnded
    | LLMUnavailable
    | TurnFailed
)
