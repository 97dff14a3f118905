"""ProviderChain: providers of one kind tried in order, behind the same Protocol they implement.

A chain tries its providers in order. Each attempt has a timeout (for a stream: until its first
piece of content), retryable errors may be retried with jittered backoff, and a circuit breaker per
provider skips one that keeps failing until a background probe (or one trial call) finds it well.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, TypeVar

from voxdialog.clock import Clock, MonotonicClock
from voxdialog.observability.metrics import CHAIN_EXHAUSTED, PROVIDER_ERRORS, PROVIDER_FAILOVERS
from voxdialog.providers.base import ProviderError, ProviderInfo, ProviderUnavailable, warm_up
from voxdialog.providers.breaker import BreakerState, CircuitBreaker
from voxdialog.providers.chain.errors import ChainExhausted, as_provider_error, describe
from voxdialog.providers.chain.policy import CallPolicy
from voxdialog.providers.chain.streams import aclose_quietly, first_item

# The package's one logger, named as the module was before the package was split.
log = logging.getLogger("voxdialog.providers.chain")

_T = TypeVar("_T")
_R = TypeVar("_R")


class _Provider(Protocol):
    info: ProviderInfo


_P = TypeVar("_P", bound=_Provider)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """One provider of a chain as health checks and metrics see it."""

    name: str
    state: BreakerState
    consecutive_failures: int
    last_error: str | None
    errors: int = 0


class _Member(Generic[_P]):
    __slots__ = ("breaker", "errors", "last_error", "name", "provider")

    def __init__(self, provider: _P, name: str, breaker: CircuitBreaker) -> None:
        self.provider = provider
        self.name = name
        self.breaker = breaker
        self.errors = 0
        self.last_error: str | None = None


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

    async def warmup(self) -> None:
        """Warm up every provider that warms up (``WarmsUp``), in chain order.

        A provider that fails its warm-up is logged and left to its breaker: the chain exists
        so that one broken provider does not stop the others.
        """
        for member in self._members:
            try:
                await warm_up(member.provider)
            except ProviderError as e:
                log.warning(
                    "provider warm-up failed",
                    extra={
                        "chain": self.name,
                        "provider": member.name,
                        "error_kind": type(e).__name__,
                    },
                )

    def _reachable(self) -> _P | None:
        """The provider a call started now would try first (None: every breaker is open)."""
        return next((m.provider for m in self._members if m.breaker.would_allow()), None)

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
            error = as_provider_error(e, member.name, timeout_s)
            self._failed(member, error, phase=phase)
            raise error from e
        member.breaker.record_success()
        return result

    def _failed(self, member: _Member[_P], error: ProviderError, *, phase: str) -> None:
        member.breaker.record_failure()
        member.errors += 1
        PROVIDER_ERRORS.labels(self.name, member.name, type(error).__name__).inc()
        member.last_error = describe(error)
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
            lambda provider: first_item(open_stream(provider), has_content)
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
                    error = as_provider_error(e, member.name, self.policy.attempt_timeout_s)
                    self._failed(member, error, phase="stream")
                    raise error from e
                yield item
        finally:
            await aclose_quietly(stream)


def _unique_names(providers: Sequence[_P]) -> list[str]:
    """Provider names, with ``#2``, ``#3`` added to repeats so health rows stay distinct."""
    seen: dict[str, int] = {}
    names: list[str] = []
    for provider in providers:
        base = provider.info.name
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return names
