"""The LLM contract, run against every adapter over HTTP and against a chain wrapping one.

Each adapter talks to its fake server (OpenAI-compatible, Anthropic, webhook); the chain is a
``FallbackLLM`` around the OpenAI-compatible adapter. Wire-format details stay in each adapter's
own tests; what every ``LLM`` must do is checked here, once:

- text streams as several deltas, and tool-call fragments assemble into whole calls;
- HTTP 429 and 5xx are retryable ``ProviderError``s with their status and ``retry_after_s``;
  other 4xx are not retryable;
- a server that hangs, or sends no first token in time, raises ``ProviderTimeout`` within the
  attempt; a refused connection raises ``ProviderUnavailable``;
- a connection dropped, an error reported or a malformed piece mid-stream raise a retryable
  ``ProviderError`` after the text already streamed;
- an answer that ends cleanly but unfinished (no finish reason, end event or ``[DONE]``: a proxy
  cutting it, a provider crashing) is a retryable ``ProviderError``, never an empty answer, so
  a chain fails over to the next provider;
- closing the iteration closes the stream on the server.

A chain wraps a failure before the first delta in ``ChainExhausted`` (one provider here);
``cause`` unwraps it, so the classification checked is the provider's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from voxdialog.providers.anthropic import AnthropicLLM
from voxdialog.providers.base import (
    LLM,
    ChatDelta,
    ChatMessage,
    ChatRequest,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    ToolCall,
    ToolSpec,
    close_provider,
)
from voxdialog.providers.chain import CallPolicy, ChainExhausted, FallbackLLM
from voxdialog.providers.openai_compat.llm import OpenAICompatLLM
from voxdialog.providers.webhook import WebhookLLM
from voxdialog.settings import ProviderSettings
from voxdialog.testing.fake_anthropic import FakeAnthropicServer, ToolUse
from voxdialog.testing.fake_http import FakeServer, Fault, free_port
from voxdialog.testing.fake_openai import ChatReply, FakeOpenAIServer, FakeToolCall
from voxdialog.testing.fake_webhook import FakeWebhookServer

REPLY = "The quick brown fox jumps over the lazy dog."
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
ASK = ChatRequest(messages=(ChatMessage(role="user", content="Tell me something."),))
ASK_WITH_TOOLS = ChatRequest(messages=ASK.messages, tools=(WEATHER,))


@dataclass
class Case:
    """One adapter under contract: its fake server and how to build and script it."""

    fake: FakeServer
    #: Builds the LLM for a base URL (None: the fake's) and a first-token limit.
    build: Callable[[str | None, float], LLM]
    #: Scripts the next answer: text, or one tool call ``(name, arguments JSON)``.
    script: Callable[[str | tuple[str, str]], None]
    tools: bool = True
    #: Makes the fake's next answer malformed (the fault, after any mode change).
    malformed: Callable[[], Fault] = lambda: Fault(malformed_after=2)
    built: list[Any] = field(default_factory=list)

    def llm(self, *, base_url: str | None = None, timeout_s: float = 2.0) -> LLM:
        llm = self.build(base_url, timeout_s)
        if not isinstance(llm, FallbackLLM):  # a chain does not own its providers
            self.built.append(llm)
        return llm


def _openai_case(fake: FakeOpenAIServer) -> Case:
    def build(base_url: str | None, timeout_s: float) -> LLM:
        settings = ProviderSettings(
            kind="openai_compatible", base_url=base_url or fake.url, model="m", timeout_s=timeout_s
        )
        return OpenAICompatLLM(settings, name="openai")

    def script(answer: str | tuple[str, str]) -> None:
        reply = (
            ChatReply(text=answer)
            if isinstance(answer, str)
            else ChatReply(tool_calls=(FakeToolCall(answer[0], answer[1], id="call_1"),))
        )
        fake.replies.clear()
        fake.replies.append(reply)

    return Case(fake, build, script)


def _anthropic_case(fake: FakeAnthropicServer) -> Case:
    def build(base_url: str | None, timeout_s: float) -> LLM:
        settings = ProviderSettings(
            kind="anthropic", base_url=base_url or fake.url, model="claude", timeout_s=timeout_s
        )
        return AnthropicLLM(settings, name="anthropic")

    def script(answer: str | tuple[str, str]) -> None:
        if isinstance(answer, str):
            fake.reset([answer])
        else:
            fake.reset([[ToolUse(answer[0], json.loads(answer[1]), id="call_1")]])

    return Case(fake, build, script)


def _webhook_case(fake: FakeWebhookServer) -> Case:
    def build(base_url: str | None, timeout_s: float) -> LLM:
        settings = ProviderSettings(
            kind="webhook", base_url=base_url or fake.url, timeout_s=timeout_s
        )
        return WebhookLLM(settings, name="webhook")

    def script(answer: str | tuple[str, str]) -> None:
        assert isinstance(answer, str), "a webhook answers in text"
        fake.reset([answer], mode="ndjson")

    def malformed() -> Fault:
        # Streamed lines that are not JSON are text by design; a JSON answer can be broken.
        fake.mode = "json"
        return Fault(malformed_after=0)

    return Case(fake, build, script, tools=False, malformed=malformed)


def _chain_case(fake: FakeOpenAIServer) -> Case:
    inner = _openai_case(fake)
    policy = CallPolicy(attempt_timeout_s=5.0, breaker_failures=1000, min_retry_interval_s=0.0)
    members: list[Any] = []

    def build(base_url: str | None, timeout_s: float) -> LLM:
        members.append(inner.build(base_url, timeout_s))
        return FallbackLLM(members[-1:], policy=policy, name="chain")

    return Case(fake, build, inner.script, built=members)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, FakeServer]]:
    with (
        FakeOpenAIServer() as openai,
        FakeAnthropicServer() as anthropic,
        FakeWebhookServer() as webhook,
    ):
        yield {"openai": openai, "anthropic": anthropic, "webhook": webhook}


@pytest.fixture(params=["openai", "anthropic", "webhook", "chain"])
async def case(
    request: pytest.FixtureRequest, servers: dict[str, FakeServer]
) -> AsyncIterator[Case]:
    kind: str = request.param
    openai = servers["openai"]
    anthropic = servers["anthropic"]
    webhook = servers["webhook"]
    assert isinstance(openai, FakeOpenAIServer)
    assert isinstance(anthropic, FakeAnthropicServer)
    assert isinstance(webhook, FakeWebhookServer)
    openai.reset()
    anthropic.reset()
    webhook.reset()
    made = {
        "openai": lambda: _openai_case(openai),
        "anthropic": lambda: _anthropic_case(anthropic),
        "webhook": lambda: _webhook_case(webhook),
        "chain": lambda: _chain_case(openai),
    }[kind]()
    made.script(REPLY)
    yield made
    for llm in made.built:
        await close_provider(llm)


def cause(error: ProviderError) -> ProviderError:
    """The provider's error: a one-provider chain wraps it in ``ChainExhausted``."""
    if isinstance(error, ChainExhausted):
        assert len(error.errors) == 1
        return error.errors[0][1]
    return error


async def read_into(texts: list[str], llm: LLM, request: ChatRequest = ASK) -> list[ChatDelta]:
    """Every delta of an answer; ``texts`` keeps the text that came before a failure."""
    deltas: list[ChatDelta] = []
    async for delta in llm.chat(request):
        deltas.append(delta)
        texts.append(delta.text)
    return deltas


async def failure(llm: LLM, texts: list[str] | None = None) -> ProviderError:
    """The ``ProviderError`` the answer ends with (the test fails if it ends well)."""
    with pytest.raises(ProviderError) as caught:
        await read_into([] if texts is None else texts, llm)
    return caught.value


# --- streaming ---------------------------------------------------------------------------


async def test_text_streams_as_several_deltas(case: Case) -> None:
    deltas = await read_into([], case.llm())
    assert "".join(d.text for d in deltas) == REPLY
    assert sum(1 for d in deltas if d.text) > 3
    assert all(d.tool_call_index is None for d in deltas)


async def test_tool_call_fragments_assemble_into_the_call(case: Case) -> None:
    if not case.tools:
        # A text-only adapter (the webhook) answers a request that offers tools in text.
        deltas = await read_into([], case.llm(), ASK_WITH_TOOLS)
        assert "".join(d.text for d in deltas) == REPLY
        assert all(d.tool_call_index is None for d in deltas)
        return
    arguments = json.dumps({"city": "Oslo", "unit": "celsius", "detail": "hourly"})
    case.script(("get_weather", arguments))
    deltas = await read_into([], case.llm(), ASK_WITH_TOOLS)
    calls: dict[int, list[str]] = {}
    for d in deltas:
        if d.tool_call_index is not None:
            call = calls.setdefault(d.tool_call_index, ["", "", ""])
            call[0] += d.tool_call_id or ""
            call[1] += d.tool_name or ""
            call[2] += d.tool_arguments
    assert list(calls) == [0]
    whole = ToolCall(*calls[0])
    assert whole.id  # it arrived once, with the name
    assert whole.name == "get_weather"
    assert json.loads(whole.arguments) == json.loads(arguments)
    assert sum(1 for d in deltas if d.tool_arguments) > 1  # really streamed in fragments


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "retry_after_s"),
    [
        (Fault(status=429, retry_after="2"), 2.0),
        (Fault(status=500), None),
        (Fault(status=503, retry_after="1.5"), 1.5),
    ],
    ids=["429", "500", "503"],
)
async def test_rate_limits_and_server_errors_are_retryable_with_retry_after(
    case: Case, fault: Fault, retry_after_s: float | None
) -> None:
    case.fake.inject(Fault(status=fault.status, retry_after=fault.retry_after))
    error = cause(await failure(case.llm()))
    assert type(error) is ProviderError
    assert (error.status, error.retryable, error.retry_after_s) == (
        fault.status,
        True,
        retry_after_s,
    )


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_other_client_errors_are_not_retryable(case: Case, status: int) -> None:
    case.fake.inject(Fault(status=status, retry_after="3"))
    error = cause(await failure(case.llm()))
    assert (type(error), error.status, error.retryable) == (ProviderError, status, False)
    assert error.retry_after_s is None  # waiting does not help


# --- time and reachability ---------------------------------------------------------------


async def test_a_server_that_hangs_raises_provider_timeout_within_the_attempt(
    case: Case,
) -> None:
    case.fake.inject(Fault(hang=True))
    started = time.monotonic()
    error = cause(await failure(case.llm(timeout_s=0.5)))
    assert isinstance(error, ProviderTimeout)
    assert error.retryable
    assert time.monotonic() - started < 3.0


async def test_headers_without_a_first_token_in_time_raise_provider_timeout(
    case: Case,
) -> None:
    case.fake.inject(Fault(first_token_delay_s=5.0))
    started = time.monotonic()
    error = cause(await failure(case.llm(timeout_s=0.4)))
    assert isinstance(error, ProviderTimeout)
    assert time.monotonic() - started < 3.0


async def test_a_refused_connection_raises_provider_unavailable(case: Case) -> None:
    llm = case.llm(base_url=f"http://127.0.0.1:{free_port()}/v1")
    error = cause(await failure(llm))
    assert isinstance(error, ProviderUnavailable)
    assert error.retryable


# --- failures mid-stream -----------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault(drop_after=3), Fault(error_after=3), Fault(end_after=3)],
    ids=["dropped", "error-reported", "ended-unfinished"],
)
async def test_a_failure_mid_stream_raises_a_retryable_error_after_the_partial_text(
    case: Case, fault: Fault
) -> None:
    case.fake.inject(
        Fault(drop_after=fault.drop_after, error_after=fault.error_after, end_after=fault.end_after)
    )
    texts: list[str] = []
    error = await failure(case.llm(), texts)
    assert not isinstance(error, ChainExhausted | ProviderTimeout)  # relayed as it came
    assert error.retryable
    partial = "".join(texts)
    assert partial
    assert REPLY.startswith(partial)
    assert partial != REPLY


async def test_an_answer_ending_before_any_content_is_a_retryable_error(case: Case) -> None:
    # 200, at most a keep-alive comment, then a clean end: no content, finish or [DONE].
    if isinstance(case.fake, FakeOpenAIServer):
        case.fake.keepalive_comments = True
    case.fake.inject(Fault(end_after=0))
    error = cause(await failure(case.llm()))
    assert type(error) is ProviderError
    assert error.retryable


async def test_a_chain_fails_over_when_the_first_answer_ends_unfinished(
    servers: dict[str, FakeServer],
) -> None:
    openai = servers["openai"]
    assert isinstance(openai, FakeOpenAIServer)
    openai.reset()
    case = _openai_case(openai)
    case.script(REPLY)
    openai.replies.append(ChatReply(text=REPLY))  # the second provider's answer
    openai.keepalive_comments = True
    openai.inject(Fault(end_after=0))
    policy = CallPolicy(attempt_timeout_s=5.0, breaker_failures=1000, min_retry_interval_s=0.0)
    first, second = case.llm(), case.llm()
    chain = FallbackLLM([first, second], policy=policy, name="chain")
    try:
        deltas = await read_into([], chain)
    finally:
        for llm in (first, second):
            await close_provider(llm)
    assert "".join(d.text for d in deltas) == REPLY  # the second answered, not "" from the first


async def test_a_malformed_stream_raises_a_retryable_provider_error(case: Case) -> None:
    case.fake.inject(case.malformed())
    error = cause(await failure(case.llm()))
    assert type(error) is ProviderError
    assert error.retryable


# --- cancellation ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "cancel"])
async def test_closing_or_cancelling_the_iteration_closes_the_stream_on_the_server(
    case: Case, how: str
) -> None:
    case.fake.inject(Fault(chunk_delay_s=0.2))
    stream = case.llm().chat(ASK)
    if how == "close":
        try:
            first = await anext(stream)
        finally:
            await close_provider(stream)
        assert first.text
    else:
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in stream:
                started.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(started.wait(), 5.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await case.fake.wait_for_abort()
    assert case.fake.streams_completed == 0
