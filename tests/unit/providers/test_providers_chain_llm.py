"""FallbackLLM: failover before the first delta, never after; retries, breakers and probes."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import pytest

from voxdialog.providers.base import (
    LLM,
    ChatDelta,
    ChatMessage,
    ChatRequest,
    ProviderError,
    ProviderInfo,
)
from voxdialog.providers.chain import PING_REQUEST, CallPolicy, ChainExhausted, FallbackLLM
from voxdialog.settings import ChainSettings
from voxdialog.testing.clock import FakeClock
from voxdialog.testing.fake_llm import FakeLLM

REQUEST = ChatRequest(messages=(ChatMessage(role="user", content="tell me the secret canary"),))


class RecordingSleep:
    """Records each requested delay and moves the fake clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)


class MaxJitter(random.Random):
    """A jitter source that always draws the top of the range, so delays are predictable."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Throttled:
    """An LLM that answers 429 with ``Retry-After`` the first ``times`` calls, then "ok"."""

    def __init__(self, *, times: int, retry_after_s: float) -> None:
        self.info = ProviderInfo(name="throttled", model="scripted", streaming=True)
        self.calls = 0
        self._times = times
        self._retry_after_s = retry_after_s

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        self.calls += 1
        if self.calls <= self._times:
            raise ProviderError(
                "slow down", retryable=True, status=429, retry_after_s=self._retry_after_s
            )
        yield ChatDelta(text="ok")


class Broken:
    """An LLM with a bug: it raises something that is not a ProviderError."""

    def __init__(self) -> None:
        self.info = ProviderInfo(name="broken", model="buggy", streaming=True)

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        raise RuntimeError("bug")
        yield ChatDelta()  # pragma: no cover - makes this an async generator


async def _text(stream: AsyncIterator[ChatDelta]) -> str:
    return "".join([delta.text async for delta in stream])


async def _drain(stream: AsyncIterator[ChatDelta], *, into: list[str]) -> None:
    async for delta in stream:
        into.append(delta.text)


async def _wait_until(predicate: Callable[[], bool]) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def _chain(
    *providers: LLM,
    clock: FakeClock | None = None,
    sleep: RecordingSleep | None = None,
    rng: random.Random | None = None,
    **policy: Any,
) -> FallbackLLM:
    return FallbackLLM(
        list(providers),
        policy=CallPolicy(**({"attempt_timeout_s": 2.0} | policy)),
        clock=clock,
        sleep=sleep,
        rng=rng,
    )


async def test_a_primary_server_error_fails_over_at_once_to_the_backups_words() -> None:
    sleep = RecordingSleep(FakeClock())
    primary = FakeLLM(["primary answer"], name="primary", fail_first=1)
    backup = FakeLLM(["backup says hi"], name="backup")
    chain = _chain(primary, backup, sleep=sleep)

    assert await _text(chain.chat(REQUEST)) == "backup says hi"

    assert sleep.delays == []
    assert len(primary.requests) == 1
    assert backup.requests == [REQUEST]
    assert chain.failovers == 1
    assert chain.errors == {"primary": 1, "backup": 0}


async def test_a_hanging_primary_is_abandoned_at_the_attempt_timeout() -> None:
    primary = FakeLLM(["never"], name="primary", hang=True)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(primary, backup, attempt_timeout_s=0.05)

    assert await _text(chain.chat(REQUEST)) == "backup answer"

    assert primary.cancelled == 1
    last_error = chain.health()[0].last_error
    assert last_error is not None
    assert last_error.startswith("ProviderTimeout")


async def test_a_stream_dropped_before_its_first_delta_fails_over() -> None:
    primary = FakeLLM(["lost words"], name="primary", fail_after=0)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(primary, backup)

    assert await _text(chain.chat(REQUEST)) == "backup answer"
    assert chain.failovers == 1


async def test_empty_deltas_do_not_count_as_the_first_delta() -> None:
    primary = FakeLLM([[ChatDelta(), ChatDelta(text="late")]], name="primary", fail_after=1)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(primary, backup)

    assert await _text(chain.chat(REQUEST)) == "backup answer"


async def test_a_stream_dropped_after_its_first_delta_propagates_without_failover() -> None:
    primary = FakeLLM(["one two three"], name="primary", fail_after=2)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(primary, backup)
    received: list[str] = []

    with pytest.raises(ProviderError) as caught:
        await _drain(chain.chat(REQUEST), into=received)

    assert not isinstance(caught.value, ChainExhausted)
    assert received == ["one", " two"]
    assert backup.requests == []
    assert chain.failovers == 0
    assert chain.errors["primary"] == 1


async def test_an_empty_answer_is_an_answer_not_a_failure() -> None:
    primary = FakeLLM([""], name="primary")
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(primary, backup)

    assert await _text(chain.chat(REQUEST)) == ""
    assert backup.requests == []


async def test_a_non_retryable_error_moves_on_at_once_without_retrying() -> None:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    primary = FakeLLM(["primary"], name="primary", fail_first=1, retryable=False)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(primary, backup, clock=clock, sleep=sleep, retries=2)

    assert await _text(chain.chat(REQUEST)) == "backup answer"

    assert len(primary.requests) == 1
    assert sleep.delays == []


async def test_retryable_errors_are_retried_on_the_same_provider_with_doubling_backoff() -> None:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    primary = FakeLLM(["primary recovered"], name="primary", fail_first=2)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(
        primary,
        backup,
        clock=clock,
        sleep=sleep,
        rng=MaxJitter(),
        retries=2,
        backoff_s=0.25,
        min_retry_interval_s=0.0,
    )

    assert await _text(chain.chat(REQUEST)) == "primary recovered"

    assert len(primary.requests) == 3
    assert backup.requests == []
    assert sleep.delays == [0.25, 0.5]


async def test_jittered_backoff_stays_within_its_doubling_bound() -> None:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    primary = FakeLLM(["never"], name="primary", fail_first=99)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(
        primary,
        backup,
        clock=clock,
        sleep=sleep,
        rng=random.Random(7),
        retries=3,
        backoff_s=0.25,
        breaker_failures=10,
        min_retry_interval_s=0.0,
    )

    assert await _text(chain.chat(REQUEST)) == "backup answer"

    assert len(primary.requests) == 4
    assert len(sleep.delays) == 3
    for n, delay in enumerate(sleep.delays):
        assert 0.0 <= delay <= 0.25 * 2**n


async def test_retries_honour_the_providers_retry_after() -> None:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    throttled = Throttled(times=1, retry_after_s=0.7)
    chain = _chain(
        throttled, clock=clock, sleep=sleep, retries=1, backoff_s=0.01, min_retry_interval_s=0.0
    )

    assert await _text(chain.chat(REQUEST)) == "ok"

    assert throttled.calls == 2
    assert sleep.delays == [pytest.approx(0.7)]


async def test_a_retry_after_longer_than_the_cap_sends_the_turn_to_the_next_provider() -> None:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    throttled = Throttled(times=1, retry_after_s=60.0)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(throttled, backup, clock=clock, sleep=sleep, retries=3, retry_after_cap_s=5.0)

    assert await _text(chain.chat(REQUEST)) == "backup answer"

    assert throttled.calls == 1
    assert sleep.delays == []


async def test_retries_of_a_failing_provider_start_at_most_once_a_second() -> None:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    primary = FakeLLM(["primary recovered"], name="primary", fail_first=2)
    chain = _chain(primary, clock=clock, sleep=sleep, retries=2, backoff_s=0.01)

    assert await _text(chain.chat(REQUEST)) == "primary recovered"

    assert sleep.delays == [pytest.approx(1.0), pytest.approx(1.0)]


async def test_retries_stop_when_the_providers_breaker_opens() -> None:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    primary = FakeLLM(["never"], name="primary", fail_first=99)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(primary, backup, clock=clock, sleep=sleep, retries=3, breaker_failures=2)

    assert await _text(chain.chat(REQUEST)) == "backup answer"

    assert len(primary.requests) == 2
    assert chain.health()[0].state == "open"


async def test_an_open_breaker_skips_the_primary_without_calling_it() -> None:
    primary = FakeLLM(["primary"], name="primary", fail_first=1)
    backup = FakeLLM(["first backup answer", "second backup answer"], name="backup")
    chain = _chain(primary, backup, clock=FakeClock(), breaker_failures=1)

    assert await _text(chain.chat(REQUEST)) == "first backup answer"
    assert await _text(chain.chat(REQUEST)) == "second backup answer"

    assert len(primary.requests) == 1
    assert len(backup.requests) == 2
    assert chain.health()[0].state == "open"
    assert chain.available()


async def test_a_probe_restores_the_primary_once_its_breaker_is_due() -> None:
    clock = FakeClock()
    primary = FakeLLM(["primary is back"], name="primary", fail_first=1)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(primary, backup, clock=clock, breaker_failures=1, breaker_reset_s=10.0)
    assert await _text(chain.chat(REQUEST)) == "backup answer"

    assert await chain.probe_once() == []
    assert len(primary.requests) == 1
    clock.advance(10.0)
    assert await chain.probe_once() == ["primary"]

    assert primary.requests[-1] == PING_REQUEST
    assert primary.requests[-1].max_tokens == 1
    assert chain.health()[0].state == "closed"
    assert await _text(chain.chat(REQUEST)) == "primary is back"
    assert len(backup.requests) == 1


async def test_a_failed_probe_keeps_the_breaker_open() -> None:
    clock = FakeClock()
    primary = FakeLLM(["primary"], name="primary", fail_first=2)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(primary, backup, clock=clock, breaker_failures=1, breaker_reset_s=10.0)
    await _text(chain.chat(REQUEST))
    clock.advance(10.0)

    assert await chain.probe_once() == []

    assert chain.health()[0].state == "open"
    assert chain.errors["primary"] == 2
    assert await _text(chain.chat(REQUEST)) == "backup answer"
    assert len(primary.requests) == 2


async def test_the_probe_loop_restores_the_primary_in_the_background() -> None:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    primary = FakeLLM(["primary is back"], name="primary", fail_first=1)
    backup = FakeLLM(["backup answer"], name="backup")
    probed: list[str] = []

    async def probe(llm: LLM) -> None:
        probed.append(llm.info.name)

    chain = FallbackLLM(
        [primary, backup],
        policy=CallPolicy(breaker_failures=1, breaker_reset_s=5.0),
        clock=clock,
        sleep=sleep,
        probe=probe,
    )
    await _text(chain.chat(REQUEST))

    loop = asyncio.create_task(chain.probe_loop(interval_s=1.0))
    try:
        await _wait_until(lambda: chain.health()[0].state == "closed")
    finally:
        loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop

    assert probed == ["primary"]
    assert clock.now() >= 5.0
    assert len(primary.requests) == 1


async def test_when_every_provider_fails_the_chain_raises_chain_exhausted() -> None:
    first = FakeLLM(["a"], name="first", fail_first=1)
    second = FakeLLM(["b"], name="second", fail_first=1, retryable=False)
    chain = _chain(first, second)

    with pytest.raises(ChainExhausted) as caught:
        await _text(chain.chat(REQUEST))

    assert isinstance(caught.value, ProviderError)
    assert not caught.value.retryable
    assert [name for name, _ in caught.value.errors] == ["first", "second"]
    assert [error.retryable for _, error in caught.value.errors] == [True, False]


async def test_with_every_breaker_open_the_chain_fails_fast_without_calls() -> None:
    first = FakeLLM(["a"], name="first", fail_first=1)
    second = FakeLLM(["b"], name="second", fail_first=1)
    chain = _chain(first, second, clock=FakeClock(), breaker_failures=1)
    with pytest.raises(ChainExhausted):
        await _text(chain.chat(REQUEST))

    assert not chain.available()
    with pytest.raises(ChainExhausted, match="circuit breaker open"):
        await _text(chain.chat(REQUEST))

    assert len(first.requests) == len(second.requests) == 1


async def test_a_provider_raising_an_untyped_error_fails_over() -> None:
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(Broken(), backup)

    assert await _text(chain.chat(REQUEST)) == "backup answer"

    last_error = chain.health()[0].last_error
    assert last_error is not None
    assert "RuntimeError" in last_error


async def test_cancelling_the_consumer_closes_the_provider_stream() -> None:
    primary = FakeLLM(["one two three"], name="primary", delta_s=30.0)
    chain = _chain(primary)
    received: list[str] = []

    task = asyncio.create_task(_drain(chain.chat(REQUEST), into=received))
    await _wait_until(lambda: bool(received))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert received == ["one"]
    assert primary.cancelled == 1


async def test_closing_the_chain_stream_closes_the_provider_stream() -> None:
    primary = FakeLLM(["one two three"], name="primary")
    chain = _chain(primary)

    stream = chain.chat(REQUEST)
    assert isinstance(stream, AsyncGenerator)
    assert (await anext(stream)).text == "one"
    await stream.aclose()

    assert primary.cancelled == 1


async def test_cancelling_while_waiting_for_the_first_delta_blames_no_provider() -> None:
    primary = FakeLLM(["never"], name="primary", hang=True)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(primary, backup, breaker_failures=1)

    task = asyncio.create_task(_text(chain.chat(REQUEST)))
    await _wait_until(lambda: bool(primary.requests))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert primary.cancelled == 1
    assert backup.requests == []
    assert chain.health()[0].consecutive_failures == 0
    assert chain.health()[0].state == "closed"


async def test_a_failover_is_logged_with_provider_fields_and_no_message_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary = FakeLLM(["primary"], name="primary", fail_first=1)
    backup = FakeLLM(["backup answer"], name="backup")
    chain = _chain(primary, backup)

    with caplog.at_level(logging.DEBUG, logger="voxdialog.providers.chain"):
        await _text(chain.chat(REQUEST))

    failover = next(r for r in caplog.records if r.getMessage() == "provider failover")
    assert failover.__dict__["provider"] == "primary"
    assert failover.__dict__["next_provider"] == "backup"
    assert failover.__dict__["error_kind"] == "ProviderError"
    assert failover.__dict__["status"] == 500
    assert all("canary" not in str(r.__dict__) for r in caplog.records)


def test_the_chain_is_itself_an_llm_named_after_its_config() -> None:
    chain: LLM = FallbackLLM(
        [FakeLLM(name="a"), FakeLLM(name="b")], policy=CallPolicy(), name="smart"
    )

    assert chain.info.name == "smart"
    assert chain.info.streaming


def test_repeated_provider_names_get_distinct_health_rows() -> None:
    chain = FallbackLLM([FakeLLM(name="x"), FakeLLM(name="x")], policy=CallPolicy())

    assert [row.name for row in chain.health()] == ["x", "x#2"]


def test_an_empty_chain_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one provider"):
        FallbackLLM([], policy=CallPolicy())


def test_the_default_policy_matches_the_default_settings() -> None:
    assert CallPolicy.from_settings(ChainSettings()) == CallPolicy()


def test_the_policy_takes_every_chain_setting() -> None:
    settings = ChainSettings(
        attempt_timeout_s=2.0, retries=2, backoff_s=0.5, breaker_failures=5, breaker_reset_s=30.0
    )

    policy = CallPolicy.from_settings(settings)

    assert (
        policy.attempt_timeout_s,
        policy.retries,
        policy.backoff_s,
        policy.breaker_failures,
        policy.breaker_reset_s,
    ) == (2.0, 2, 0.5, 5, 30.0)
