"""FallbackLLM, FallbackSTT and FallbackTTS: the chains of each stage, and their default probes.

A stream fails over only before its first piece reached the caller, so a user never hears two
answers spliced together or a voice that changes mid-sentence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from voxdialog.audio.formats import PIPELINE_RATE, SAMPLE_WIDTH, AudioChunk
from voxdialog.providers.base import (
    LLM,
    STT,
    TTS,
    ChatDelta,
    ChatMessage,
    ChatRequest,
    STTPriority,
    Transcript,
    VoiceSettings,
    stt_busy,
)
from voxdialog.providers.chain.core import ProviderChain
from voxdialog.providers.chain.streams import first_and_close

#: The cheap request a probe sends to an LLM whose breaker is open.
PING_REQUEST = ChatRequest(messages=(ChatMessage(role="user", content="ping"),), max_tokens=1)


class FallbackLLM(ProviderChain[LLM]):
    """An ``LLM`` that tries its providers in order and fails over before the first delta.

    Once a delta with content has been yielded, the answer belongs to that provider: a later
    error propagates as ``ProviderError`` and no other provider is asked. The default probe is a
    one-token "ping" chat. Arguments as for ``ProviderChain``.
    """

    def chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        """Stream the first provider's answer that starts in time.

        Raises:
            ChainExhausted: no provider produced a first delta.
            ProviderError: the answering provider failed after its first delta.
        """
        return self._stream(lambda llm: llm.chat(request), _delta_has_content)

    async def _ping(self, provider: LLM) -> None:
        await first_and_close(provider.chat(PING_REQUEST))


class FallbackSTT(ProviderChain[STT]):
    """An ``STT`` that replays the turn's clip to the next provider when one fails.

    The default probe transcribes 100 ms of silence. Arguments as for ``ProviderChain``.
    """

    _streams = False

    @property
    def busy(self) -> bool:
        """Whether the provider a call would reach now is busy (``BusyReporting``).

        Only that one matters: a call waits on it, not on the providers behind it, which are
        asked only if it fails.
        """
        provider = self._reachable()
        return provider is not None and stt_busy(provider)

    async def transcribe(
        self,
        clip: AudioChunk,
        *,
        language: str | None = None,
        prompt: str | None = None,
        word_timestamps: bool = False,
        priority: STTPriority = STTPriority.LIVE,
    ) -> Transcript:
        """Transcribe ``clip`` with the first provider that answers in time.

        Raises:
            ChainExhausted: every provider failed.
        """
        _, transcript = await self._call(
            lambda stt: stt.transcribe(
                clip,
                language=language,
                prompt=prompt,
                word_timestamps=word_timestamps,
                priority=priority,
            )
        )
        return transcript

    async def _ping(self, provider: STT) -> None:
        rate = provider.info.sample_rate or PIPELINE_RATE
        await provider.transcribe(AudioChunk(bytes(rate // 10 * SAMPLE_WIDTH), rate))


class FallbackTTS(ProviderChain[TTS]):
    """A ``TTS`` that fails over only before the first audio, so a voice never changes mid-text.

    The default probe speaks "ok" and keeps the first chunk. Arguments as for ``ProviderChain``.
    """

    def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        """Stream audio from the first provider whose first chunk arrives in time.

        Raises:
            ChainExhausted: no provider produced audio (or a clean, empty end).
            ProviderError: the speaking provider failed after its first chunk.
        """
        return self._stream(lambda tts: tts.synthesize(text, voice=voice), _chunk_has_audio)

    def for_reply(self) -> TTS:
        """A TTS for one reply: the chain picks the voice for its first sentence, and every
        later sentence stays with that provider (a failure ends the reply instead of letting
        another voice finish it)."""
        return _PinnedTTS(self)

    async def _ping(self, provider: TTS) -> None:
        await first_and_close(provider.synthesize("ok", voice=VoiceSettings()))


class _PinnedTTS:
    """See ``FallbackTTS.for_reply``."""

    def __init__(self, chain: FallbackTTS) -> None:
        self._chain = chain
        self._speaker: TTS | None = None
        self.info = chain.info

    def _pin(self, provider: TTS) -> None:
        self._speaker = provider

    def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        """The first call goes through the chain; later ones to the provider it chose."""
        if self._speaker is not None:
            return self._speaker.synthesize(text, voice=voice)
        return self._chain._stream(
            lambda tts: tts.synthesize(text, voice=voice), _chunk_has_audio, self._pin
        )


def _delta_has_content(delta: ChatDelta) -> bool:
    return bool(
        delta.text
        or delta.tool_call_index is not None
        or delta.tool_call_id
        or delta.tool_name
        or delta.tool_arguments
    )


def _chunk_has_audio(chunk: AudioChunk) -> bool:
    return len(chunk.pcm) > 0
