"""The provider Protocols, their value types, and the optional capabilities a provider may have.

Protocols declare streams with a plain ``def`` returning ``AsyncIterator``; implementations write
``async def ... yield``. Heavy models load once per process (in the provider object); anything
that belongs to one session lives in a stream object the provider hands out.

Optional capabilities (``BusyReporting``, ``WarmsUp``, ``PerReplyVoice``, ``Closeable``) are
``runtime_checkable`` Protocols; callers use the helpers below them (``stt_busy``,
``tts_for_reply``, ``warm_up``, ``close_provider``) instead of looking for attributes by name.
Wrappers (provider chains, routing, ``VoicedTTS``) implement the first three by asking what they
wrap; they do not close what they wrap, since the assembly that built a provider owns it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol, runtime_checkable

from voxdialog.audio.formats import AudioChunk


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What a provider is: its registry name, the model it runs, and what it can do."""

    name: str
    model: str
    streaming: bool = False
    sample_rate: int | None = None


class ProviderError(Exception):
    """A provider failed; ``retryable`` says whether trying again (or elsewhere) can help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        #: The HTTP status a remote provider answered with, if any.
        self.status = status
        #: How long the provider asked us to wait (``Retry-After``), if it said.
        self.retry_after_s = retry_after_s


class ProviderTimeout(ProviderError):
    """The provider did not answer in time."""

    def __init__(self, message: str = "provider timed out") -> None:
        super().__init__(message, retryable=True)


class ProviderUnavailable(ProviderError):
    """The provider cannot be used at all (missing model, refused connection, ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


# --- VAD ---------------------------------------------------------------------------------


class VADStream(Protocol):
    """Per-session VAD state (e.g. Silero's recurrent state)."""

    #: Samples (at the pipeline rate) each call to ``speech_probability`` expects.
    frame_samples: int

    def speech_probability(self, frame: bytes) -> float:
        """Probability in [0, 1] that ``frame`` (PCM16, ``frame_samples`` long) holds speech.

        Fast and synchronous; the caller decides on threading.
        """
        ...

    def reset(self) -> None:
        """Forget the recurrent state (e.g. after a long gap)."""
        ...


@runtime_checkable
class BatchedVADStream(Protocol):
    """A VAD stream whose model scores the frames of many streams in one call.

    Scoring frame by frame costs one model call (and one GIL hand-over) per frame of every
    session; a process-wide scorer instead gives ``batch.score_streams`` everything that is
    waiting, and the model steps every stream at once.
    """

    frame_samples: int

    @property
    def batch(self) -> VADBatch:
        """What scores this stream's frames together with other streams of the same model."""
        ...


class VADBatch(Protocol):
    """Scores several streams of one model together."""

    def score_streams(
        self, work: Sequence[tuple[BatchedVADStream, Sequence[bytes]]]
    ) -> list[list[float]]:
        """The speech probability of each frame of each stream, in order.

        A stream's state advances through its frames; frames must be whole (``frame_samples``).
        """
        ...


class VAD(Protocol):
    """Voice activity detection."""

    info: ProviderInfo

    def open_stream(self, sample_rate: int) -> VADStream:
        """Start a fresh per-session stream for audio at ``sample_rate``."""
        ...


# --- STT ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    """One timed piece of a transcript (seconds from the start of the clip)."""

    start: float
    end: float
    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    words: tuple[TranscriptWord, ...] = ()


@dataclass(frozen=True, slots=True)
class TranscriptWord:
    """One timed word."""

    start: float
    end: float
    word: str
    probability: float = 1.0


@dataclass(frozen=True, slots=True)
class Transcript:
    """What an STT provider heard."""

    text: str
    is_final: bool = True
    language: str | None = None
    duration_s: float = 0.0
    segments: tuple[TranscriptSegment, ...] = ()


class STTPriority(IntEnum):
    """Who waits for a transcript, most urgent first.

    A local model has few slots; when they are taken, the most urgent waiter goes next: a
    person waiting for an answer before a guess made while they paused, that before a partial
    transcript, and all of them before an uploaded file (which is transcribed in pieces, so
    it never holds a live turn up for long). Remote providers may ignore it.
    """

    LIVE = 0
    SPECULATIVE = 1
    PARTIAL = 2
    UPLOAD = 3


class STT(Protocol):
    """Speech to text."""

    info: ProviderInfo

    async def transcribe(
        self,
        clip: AudioChunk,
        *,
        language: str | None = None,
        prompt: str | None = None,
        word_timestamps: bool = False,
        priority: STTPriority = STTPriority.LIVE,
    ) -> Transcript:
        """Transcribe a whole clip. Raises ``ProviderError`` on failure."""
        ...


# --- TTS ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    """How to speak: voice name, speaking rate (1.0 = normal) and volume (1.0 = unchanged)."""

    voice: str = "default"
    speed: float = 1.0
    volume: float = 1.0


class TTS(Protocol):
    """Text to speech."""

    info: ProviderInfo

    def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        """Stream audio for ``text`` as it is produced; cancel the iteration to stop."""
        ...


# --- LLM (used by LLM brains; the offline default brain does not need one) ---------------


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call: ``arguments`` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call (``parameters`` is a JSON Schema object)."""

    name: str
    description: str
    parameters: dict[str, object]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a chat context.

    An assistant message that called tools carries ``tool_calls`` (its ``content`` may be
    empty); each answer to a call is a ``tool`` message with the call's ``tool_call_id``.
    """

    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A chat-completion request in provider-neutral form."""

    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    tools: tuple[ToolSpec, ...] = field(default_factory=tuple)
    tool_choice: str = "auto"  # "auto" | "none" | "required" | a tool name


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """A streamed piece of an answer: text, or a fragment of a tool call.

    Tool calls stream like OpenAI's: fragments with the same ``tool_call_index``; ``id`` and
    ``name`` arrive once, ``tool_arguments`` fragments are concatenated. Reasoning text is
    never put in ``text``.
    """

    text: str = ""
    tool_call_index: int | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    tool_arguments: str = ""


class LLM(Protocol):
    """A chat model."""

    info: ProviderInfo

    def chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        """Stream the answer; cancel the iteration to abort generation."""
        ...


# --- Optional capabilities ---------------------------------------------------------------


@runtime_checkable
class BusyReporting(Protocol):
    """An STT that can tell when a new transcription would have to wait for a running one.

    Optional work (partial transcripts) is skipped while ``busy``, so it never delays a final
    transcript. A chain reports the provider a call would reach now (see ``FallbackSTT``).
    """

    @property
    def busy(self) -> bool:
        """Whether a transcription started now would queue behind others."""
        ...


@runtime_checkable
class WarmsUp(Protocol):
    """A provider whose first call is slow (allocations, model start-up) unless warmed first."""

    async def warmup(self) -> None:
        """Do one throwaway call, so the first user does not pay for it."""
        ...


@runtime_checkable
class PerReplyVoice(Protocol):
    """A TTS that hands out a view for one reply, so every sentence of it has the same voice.

    A fallback chain picks a provider for the reply's first sentence and keeps it for the rest
    (a failure ends the reply rather than letting another voice finish it).
    """

    def for_reply(self) -> TTS:
        """The TTS that speaks every sentence of one reply."""
        ...


@runtime_checkable
class Closeable(Protocol):
    """Something holding connections, threads or a stream to release: providers and async
    generators alike."""

    async def aclose(self) -> None:
        """Release what it holds; calling it twice is harmless."""
        ...


def stt_busy(stt: STT) -> bool:
    """Whether ``stt`` says a transcription now would wait (False when it cannot tell)."""
    return isinstance(stt, BusyReporting) and stt.busy


def tts_for_reply(tts: TTS) -> TTS:
    """The TTS to speak one reply with: ``tts``'s per-reply view, or ``tts`` itself."""
    return tts.for_reply() if isinstance(tts, PerReplyVoice) else tts


async def warm_up(provider: object) -> None:
    """Warm ``provider`` up if it has a warm-up (errors propagate)."""
    if isinstance(provider, WarmsUp):
        await provider.warmup()


async def close_provider(resource: object) -> None:
    """Close ``resource`` (a provider, or a stream that is an async generator) if it can be."""
    if isinstance(resource, Closeable):
        await resource.aclose()
