"""Provider chains: FallbackLLM, FallbackSTT and FallbackTTS fail over behind the same Protocols.

A chain tries its providers in order. Each attempt has a timeout (for a stream: until its first
piece of content), retryable errors may be retried with jittered backoff, and a circuit breaker per
provider skips one that keeps failing until a background probe (or one trial call) finds it well.
A stream fails over only before its first piece reached the caller, so a user never hears two
answers spliced together or a voice that changes mid-sentence.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, TypeVar

from voxdialog.audio.formats import PIPELINE_RATE, SAMPLE_WIDTH, AudioChunk
from voxdialog.observability.metrics import CHAIN_EXHAUSTED, PROVIDER_ERRORS, PROVIDER_FAILOVERS
from voxdialog.pipeline.clock import Clock, MonotonicClock
from voxdialog.providers.base import (
    LLM,
    STT,
    TTS,
    ChatDelta,
    ChatMessage,
    ChatRequest,
    ProviderError,
    ProviderInfo,
    ProviderTimeout,
    ProviderUnavailable,
    Transcript,
    VoiceSettings,
)
from voxdialog.providers.breaker import BreakerState, CircuitBreaker
from voxdialog.settings import ChainSettings

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")


class _Provider(Protocol):
    info: ProviderInfo


_P = TypeVar("_P", bound=_Provider)

Sleep = Callable[[float], Awaitable[None]]

#: The cheap request a probe sends to an LLM whose breaker is open.
PING_REQUEST = ChatRequest(messages=(ChatMessage(role="user", content="ping"),), max_tokens=1)


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """How a chain calls each provider (defaults match ``ChainSettings``).

    Attributes:
        attempt_timeout_s: limit per attempt; for a stream, until its first piece of content.
        retries: extra attempts on the same provider after a retryable error.
        backoff_s: first retry delay; it doubles per retry, with full jitter.
        breaker_failures: consecutive failures that open a provider's breaker.
        breaker_reset_s: how long a breaker stays open before a probe or trial call.
        retry_after_cap_s: the longest ``Retry-After`` honoured; a longer one moves on instead.
        min_retry_interval_s: attempts on one failing provider start at least this far apart.
    """

    attempt_timeout_s: float = 5.0
    retries: int = 0
    backoff_s: float = 0.25
    breaker_failures: int = 3
    breaker_reset_s: float = 15.0
    retry_after_cap_s: float = 5.0
    min_retry_interval_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: ChainSettings) -> CallPolicy:
        """The policy a ``ChainSettings`` group describes."""
        return cls(
            attempt_timeout_s=settings.attempt_timeout_s,
            retries=settings.retries,
            backoff_s=settings.backoff_s,
            breaker_failures=settings.breaker_failures,
            breaker_reset_s=settings.breaker_reset_s,
        )


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """One provider of a chain as health checks and metrics see it."""

    name: str
    state: BreakerState
    consecutive_failures: int
    last_error: str | None
    errors: int = 0


class ChainExhausted(ProviderError):
    """Every provider of a chain failed (or was skipped by its open breaker).

    Attributes:
        errors: ``(provider name, error)`` for each provider, in chain order.
    """

    def __init__(self, chain: str, errors: Sequence[tuple[str, ProviderError]]) -> None:
        summary = ", ".join(f"{name}: {_describe(error)}" for name, error in errors)
        super().__init__(f"every provider of {chain} failed ({summary})", retryable=False)
        self.errors = tuple(errors)


class _Member(Generic[_P]):
    __slots__ = ("breaker", "errors", "last_error", "name", "provider")

    def __init__(self, provider: _P, name: str, breaker: CircuitBreaker) -> None:
        self.provider = provider
        self.name = name
        self.breaker = breaker
        self.errors = 0
        self.last_error: str | None = None


@dataclass(frozen=True, slots=True)
class _Opened(Generic[_T]):
    """A stream that produced its first piece of content (``None``: it ended without any)."""

    stream: AsyncIterator[_T]
    first: _T | None


class ProviderChain(Generic[_P]):
    """Providers of one kind tried in order; the base of the three Fallback chains.

    Args:
        providers: the chain, primary first.
        policy: timeouts, retries and breaker settings.
        clock: the breakers' clock (monotonic by default).
        name: the chain's provider name in ``info`` and in logs.
        probe: how to check a provider whose breaker is open; each chain has a cheap default.
        sleep: how to wait between retries and probes (tests inject a fake).
        rng: the jitter source.

    Raises:
        ValueError: ``providers`` is empty.
    """

    #: Whether ``info`` says the chain streams (STT chains answer whole clips).
    _streams: ClassVar[bool] = True

    def __init__(
        self,
        providers: Sequence[_P],
        *,
        policy: CallPolicy,
        clock: Clock | None = None,
        name: str = "chain",
        probe: Callable[[_P], Awaitable[None]] | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not providers:
            raise ValueError("a provider chain needs at least one provider")
        self.policy = policy
        self.name = name
        self._clock = clock or MonotonicClock()
        self._probe = probe or self._ping
        self._sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self._members = [
            _Member(
                provider,
                member_name,
                CircuitBreaker(
                    failures=policy.breaker_failures,
                    reset_s=policy.breaker_reset_s,
                    clock=self._clock,
                ),
            )
            for provider, member_name in zip(providers, _unique_names(providers), strict=True)
        ]
        self.info = ProviderInfo(
            name=name,
            model=" > ".join(p.info.model for p in providers),
            streaming=self._streams,
            sample_rate=providers[0].info.sample_rate,
        )
        #: Calls handed from a failed provider to the next one.
        self.failovers = 0

    async def _ping(self, provider: _P) -> None:
        """The default probe."""
        raise NotImplementedError

    @property
    def errors(self) -> dict[str, int]:
        """Failed attempts (probes and dropped streams included) per provider name."""
        return {m.name: m.errors for m in self._members}

    def health(self) -> list[ProviderHealth]:
        """Each provider's breaker state and recent failures, in chain order."""
        return [
            ProviderHealth(
                name=m.name,
                state=m.breaker.state,
                consecutive_failures=m.breaker.consecutive_failures,
                last_error=m.last_error,
                errors=m.errors,
            )
            for m in self._members
        ]

    def available(self) -> bool:
        """Whether a call now would reach some provider (not every breaker is open)."""
        return any(m.breaker.would_allow() for m in self._members)

    async def probe_once(self) -> list[str]:
        """Probe every provider whose breaker is due a trial; returns the names restored."""
        restored: list[str] = []
        for member in self._members:
            if member.breaker.state != "half_open" or not member.breaker.allow():
                continue
            try:
                await self._attempt(member, self._probe, phase="probe")
            except ProviderError:
                continue
            restored.append(member.name)
            log.info("provider restored", extra={"chain": self.name, "provider": member.name})
        return restored

    async def probe_loop(self, *, interval_s: float | None = None) -> None:
        """Probe open providers forever, so user traffic never pays for finding one recovered.

        Run it as a background task (``task_group.create_task(chain.probe_loop())``) and cancel
        it on shutdown.

        Args:
            interval_s: how often to look; defaults to ``min(1 s, breaker_reset_s)``.
        """
        interval = interval_s if interval_s is not None else min(1.0, self.policy.breaker_reset_s)
        while True:
            await self.probe_once()
            await self._sleep(interval)

    async def _call(self, attempt: Callable[[_P], Awaitable[_R]]) -> tuple[_Member[_P], _R]:
        """Run ``attempt`` on the first provider that answers; raise ``ChainExhausted`` if none."""
        failed: list[tuple[str, ProviderError]] = []
        for index, member in enumerate(self._members):
            error: ProviderError = ProviderUnavailable("circuit breaker open")
            tried = False
            retry = 0
            while member.breaker.allow():
                tried = True
                started = self._clock.now()
                try:
                    return member, await self._attempt(member, attempt, phase="call")
                except ProviderError as e:
                    error = e
                delay = self._retry_delay(error, retry=retry, started=started)
                if delay is None:
                    break
                retry += 1
                await self._sleep(delay)
            failed.append((member.name, error))
            if tried and index + 1 < len(self._members):
                self.failovers += 1
                PROVIDER_FAILOVERS.labels(
                    self.name, member.name, self._members[index + 1].name
                ).inc()
                log.warning(
                    "provider failover",
                    extra={
                        "chain": self.name,
                        "provider": member.name,
                        "next_provider": self._members[index + 1].name,
                        "error_kind": type(error).__name__,
                        "status": error.status,
                        "retryable": error.retryable,
                    },
                )
        CHAIN_EXHAUSTED.labels(self.name).inc()
        log.error(
            "provider chain exhausted",
            extra={
                "chain": self.name,
                "providers": [name for name, _ in failed],
                "error_kinds": [type(error).__name__ for _, error in failed],
            },
        )
        raise ChainExhausted(self.name, failed)

    async def _attempt(
        self, member: _Member[_P], attempt: Callable[[_P], Awaitable[_R]], *, phase: str
    ) -> _R:
        """One timed attempt; records its verdict on the breaker. Raises ``ProviderError``."""
        timeout_s = self.policy.attempt_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                result = await attempt(member.provider)
        except asyncio.CancelledError:
            member.breaker.release()  # the caller gave up; that says nothing about the provider
            raise
        except ProviderError as e:
            self._failed(member, e, phase=phase)
            raise
        except Exception as e:  # TimeoutError, or a provider that raised something untyped
            error = _as_provider_error(e, member.name, timeout_s)
            self._failed(member, error, phase=phase)
            raise error from e
        member.breaker.record_success()
        return result

    def _failed(self, member: _Member[_P], error: ProviderError, *, phase: str) -> None:
        member.breaker.record_failure()
        member.errors += 1
        PROVIDER_ERRORS.labels(self.name, member.name, type(error).__name__).inc()
        member.last_error = _describe(error)
        log.info(
            "provider attempt failed",
            extra={
                "chain": self.name,
                "provider": member.name,
                "phase": phase,
                "error_kind": type(error).__name__,
                "status": error.status,
                "retryable": error.retryable,
                "breaker": member.breaker.state,
            },
        )

    def _retry_delay(self, error: ProviderError, *, retry: int, started: float) -> float | None:
        """Seconds to wait before retrying the same provider, or ``None`` to move on."""
        policy = self.policy
        if not error.retryable or retry >= policy.retries:
            return None
        after = error.retry_after_s
        if after is not None and after > policy.retry_after_cap_s:
            return None  # the provider asked for longer than a turn can wait: go elsewhere
        delay = self._rng.uniform(0.0, policy.backoff_s * 2**retry)
        if after is not None:
            delay = max(delay, after)
        # During an outage, at most one connect attempt per provider per min_retry_interval_s.
        spacing = policy.min_retry_interval_s - (self._clock.now() - started)
        return max(delay, spacing, 0.0)

    async def _stream(
        self,
        open_stream: Callable[[_P], AsyncIterator[_T]],
        has_content: Callable[[_T], bool],
        on_member: Callable[[_P], None] | None = None,
    ) -> AsyncIterator[_T]:
        """Fail over until a stream yields content; then relay it, errors and all."""
        member, opened = await self._call(
            lambda provider: _first_item(open_stream(provider), has_content)
        )
        if on_member is not None:
            on_member(member.provider)
        stream = opened.stream
        try:
            if opened.first is None:
                return
            yield opened.first
            while True:
                try:
                    item = await anext(stream)
                except StopAsyncIteration:
                    return
                except ProviderError as e:
                    self._failed(member, e, phase="stream")
                    raise
                except Exception as e:
                    error = _as_provider_error(e, member.name, self.policy.attempt_timeout_s)
                    self._failed(member, error, phase="stream")
                    raise error from e
                yield item
        finally:
            await _aclose(stream)


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
        await _first_and_close(provider.chat(PING_REQUEST))


class FallbackSTT(ProviderChain[STT]):
    """An ``STT`` that replays the turn's clip to the next provider when one fails.

    The default probe transcribes 100 ms of silence. Arguments as for ``ProviderChain``.
    """

    _streams = False

    async def transcribe(
        self,
        clip: AudioChunk,
        *,
        language: str | None = None,
        prompt: str | None = None,
        word_timestamps: bool = False,
    ) -> Transcript:
        """Transcribe ``clip`` with the first provider that answers in time.

        Raises:
            ChainExhausted: every provider failed.
        """
        _, transcript = await self._call(
            lambda stt: stt.transcribe(
                clip, language=language, prompt=prompt, word_timestamps=word_timestamps
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
        await _first_and_close(provider.synthesize("ok", voice=VoiceSettings()))


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


async def _first_and_close(stream: AsyncIterator[_T]) -> None:
    try:
        await anext(stream, None)
    finally:
        await _aclose(stream)


async def _first_item(stream: AsyncIterator[_T], has_content: Callable[[_T], bool]) -> _Opened[_T]:
    """Pull until the first piece with content (empty pieces are dropped); close on failure."""
    try:
        while True:
            try:
                item = await anext(stream)
            except StopAsyncIteration:
                return _Opened(stream, None)
            if has_content(item):
                return _Opened(stream, item)
    except BaseException:
        await _aclose(stream)
        raise


async def _aclose(stream: AsyncIterator[object]) -> None:
    """Close an abandoned stream; a provider's error while closing is logged, not raised."""
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception as e:
        log.debug("provider stream failed to close", extra={"error_kind": type(e).__name__})


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


def _as_provider_error(error: Exception, provider: str, timeout_s: float) -> ProviderError:
    if isinstance(error, ProviderError):
        return error
    if isinstance(error, TimeoutError):
        return ProviderTimeout(f"{provider} gave no answer within {timeout_s:g} s")
    if isinstance(error, ConnectionError):
        return ProviderUnavailable(f"{provider}: {type(error).__name__}")
    return ProviderError(f"{provider} raised {type(error).__name__}", retryable=False)


def _describe(error: ProviderError) -> str:
    status = f" {error.status}" if error.status is not None else ""
    return f"{type(error).__name__}{status}: {str(error)[:200]}"


def _unique_names(providers: Sequence[_P]) -> list[str]:
    """Provider names, with ``#2``, ``#3`` added to repeats so health rows stay distinct."""
    seen: dict[str, int] = {}
    names: list[str] = []
    for provider in providers:
        base = provider.info.name
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return names
