"""OpenAICompatLLM against the fake OpenAI server: streaming, tool calls and every fault."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from voxdialog.providers.base import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    ProviderError,
    ProviderTimeout,
    ToolCall,
    ToolSpec,
)
from voxdialog.providers.openai_compat.llm import OpenAICompatLLM
from voxdialog.settings import ProviderSettings
from voxdialog.testing.fake_openai import ChatReply, FakeOpenAIServer, FakeToolCall, Fault

ASK = ChatRequest(messages=(ChatMessage("user", "What is the weather in Oslo?"),))
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)

MakeLLM = Callable[..., Awaitable[OpenAICompatLLM]]


@pytest.fixture
async def make_llm(fake: FakeOpenAIServer) -> AsyncIterator[MakeLLM]:
    """Build providers aimed at the fake (settings overridable); closed after the test."""
    built: list[OpenAICompatLLM] = []

    async def make(**overrides: object) -> OpenAICompatLLM:
        fields: dict[str, object] = {
            "kind": "openai_compatible",
            "base_url": fake.url,
            "model": "llama3.1",
            "timeout_s": 5.0,
        }
        fields.update(overrides)
        llm = OpenAICompatLLM(ProviderSettings.model_validate(fields), name="primary")
        built.append(llm)
        return llm

    yield make
    for llm in built:
        await llm.aclose()


async def collect(llm: OpenAICompatLLM, request: ChatRequest = ASK) -> list[ChatDelta]:
    return [delta async for delta in llm.chat(request)]


def joined_calls(deltas: list[ChatDelta]) -> dict[int, ToolCall]:
    """Reassemble tool-call fragments the way a brain does."""
    ids: dict[int, str] = {}
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for d in deltas:
        if d.tool_call_index is None:
            continue
        assert not (d.tool_call_id and d.tool_call_index in ids), "id sent twice"
        assert not (d.tool_name and d.tool_call_index in names), "name sent twice"
        if d.tool_call_id:
            ids[d.tool_call_index] = d.tool_call_id
        if d.tool_name:
            names[d.tool_call_index] = d.tool_name
        arguments[d.tool_call_index] = arguments.get(d.tool_call_index, "") + d.tool_arguments
    return {i: ToolCall(ids[i], names[i], arguments[i]) for i in names}


async def test_request_body_follows_the_openai_chat_format(
    fake: FakeOpenAIServer, make_llm: MakeLLM
) -> None:
    llm = await make_llm(api_key="sk-test", headers={"HTTP-Referer": "https://example.org"})
    request = ChatRequest(
        messages=(
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Weather in Oslo?"),
            ChatMessage(
                "assistant",
                "",
                tool_calls=(ToolCall("call_1", "get_weather", '{"city":"Oslo"}'),),
            ),
            ChatMessage("tool", '{"temp_c":21}', tool_call_id="call_1"),
        ),
        temperature=0.7,
        max_tokens=512,
        tools=(WEATHER,),
        tool_choice="auto",
    )
    await collect(llm, request)
    sent = fake.requests_to("/chat/completions")[-1]
    assert sent.api_key == "sk-test"
    assert sent.headers["http-referer"] == "https://example.org"
    assert sent.json == {
        "model": "llama3.1",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "content": '{"temp_c":21}', "tool_call_id": "call_1"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather in a city.",
                    "parameters": WEATHER.parameters,
                },
            }
        ],
        "tool_choice": "auto",
        "temperature": 0.7,
        "max_tokens": 512,
    }


async def test_a_tool_choice_naming_a_tool_forces_that_function_and_no_tools_sends_no_choice(
    fake: FakeOpenAIServer, make_llm: MakeLLM
) -> None:
    llm = await make_llm()
    await collect(
        llm, ChatRequest(messages=ASK.messages, tools=(WEATHER,), tool_choice="get_weather")
    )
    await collect(llm, ChatRequest(messages=ASK.messages, tool_choice="required"))
    forced, plain = (r.json for r in fake.requests_to("/chat/completions"))
    assert forced["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert "tool_choice" not in plain
    assert "tools" not in plain
    assert "temperature" not in plain


async def test_no_key_is_sent_as_bearer_none_for_ollama(
    fake: FakeOpenAIServer, make_llm: MakeLLM
) -> None:
    llm = await make_llm(kind="ollama")
    await collect(llm)
    assert fake.requests[-1].api_key == "none"


async def test_tool_call_fragments_reassemble_into_the_calls_the_model_made(
    fake: FakeOpenAIServer, make_llm: MakeLLM
) -> None:
    fake.replies.append(
        ChatReply(
            text="Let me check.",
            tool_calls=(
                FakeToolCall("get_weather", '{"city": "Oslo", "unit": "celsius"}', id="call_w"),
                FakeToolCall("get_time", '{"zone": "Europe/Oslo"}', id="call_t"),
            ),
        )
    )
    llm = await make_llm()
    deltas = await collect(llm, ChatRequest(messages=ASK.messages, tools=(WEATHER,)))
    assert "".join(d.text for d in deltas) == "Let me check."
    calls = joined_calls(deltas)
    assert calls == {
        0: ToolCall("call_w", "get_weather", '{"city": "Oslo", "unit": "celsius"}'),
        1: ToolCall("call_t", "get_time", '{"zone": "Europe/Oslo"}'),
    }
    assert json.loads(calls[0].arguments)["city"] == "Oslo"
    assert sum(1 for d in deltas if d.tool_arguments) > 2  # really streamed in fragments


async def test_reasoning_is_never_spoken(fake: FakeOpenAIServer, make_llm: MakeLLM) -> None:
    fake.stream_reasoning = True
    fake.replies.append(ChatReply(text="It is sunny.", reasoning="The user wants weather data"))
    llm = await make_llm()
    deltas = await collect(llm)
    assert "".join(d.text for d in deltas) == "It is sunny."


async def test_openrouter_comment_lines_are_ignored(
    fake: FakeOpenAIServer, make_llm: MakeLLM
) -> None:
    fake.keepalive_comments = True
    fake.replies.append(ChatReply(text="Routed through a proxy."))
    llm = await make_llm(kind="openrouter", base_url=fake.url)
    deltas = await collect(llm)
    assert "".join(d.text for d in deltas) == "Routed through a proxy."


async def test_a_first_token_slower_than_usual_but_within_the_limit_still_answers(
    fake: FakeOpenAIServer, make_llm: MakeLLM
) -> None:
    fake.inject(Fault(first_token_delay_s=0.2))
    llm = await make_llm(timeout_s=5.0)
    deltas = await collect(llm)
    assert "".join(d.text for d in deltas) == fake.default_reply.text


async def test_openais_retry_after_ms_wins_over_retry_after(
    fake: FakeOpenAIServer, make_llm: MakeLLM
) -> None:
    fake.inject(Fault(status=429, retry_after="2", retry_after_ms=1500))
    llm = await make_llm()
    with pytest.raises(ProviderError) as millis:
        await collect(llm)
    assert millis.value.retry_after_s == 1.5  # the finer one


async def test_headers_without_a_first_chunk_in_time_raise_provider_timeout(
    fake: FakeOpenAIServer, make_llm: MakeLLM
) -> None:
    fake.inject(Fault(first_token_delay_s=3.0))
    fake.keepalive_comments = True  # keep-alive comments are not a first token
    llm = await make_llm(timeout_s=0.4)
    with pytest.raises(ProviderTimeout) as excinfo:
        await collect(llm)
    assert excinfo.value.retryable


async def test_a_connection_dropped_right_after_the_headers_raises_a_retryable_error(
    fake: FakeOpenAIServer, make_llm: MakeLLM
) -> None:
    fake.inject(Fault(drop_after=0))
    llm = await make_llm()
    with pytest.raises(ProviderError) as excinfo:
        await collect(llm)
    assert excinfo.value.retryable


@pytest.mark.parametrize(
    ("fault", "vllm", "retryable"),
    [
        (Fault(error_after=2, error_type="502", message="upstream died"), False, True),
        (Fault(error_after=2, error_type="400", message="context too long"), True, False),
    ],
    ids=["openai-shape", "vllm-shape"],
)
async def test_an_error_object_mid_stream_raises_a_provider_error(
    fake: FakeOpenAIServer, make_llm: MakeLLM, fault: Fault, vllm: bool, retryable: bool
) -> None:
    fake.vllm_errors = vllm
    fake.inject(fault)
    llm = await make_llm()
    with pytest.raises(ProviderError, match=str(fault.message)) as excinfo:
        await collect(llm)
    assert excinfo.value.status == int(str(fault.error_type))
    assert excinfo.value.retryable is retryable


async def test_a_closed_provider_opens_a_new_client_in_another_event_loop(
    fake: FakeOpenAIServer,
) -> None:
    settings = ProviderSettings(kind="openai_compatible", base_url=fake.url, model="m")
    llm = OpenAICompatLLM(settings, name="shared")

    async def once() -> str:
        try:
            return "".join([d.text async for d in llm.chat(ASK)])
        finally:
            await llm.aclose()

    answers = [await asyncio.to_thread(asyncio.run, once()) for _ in range(2)]
    assert answers == [fake.default_reply.text] * 2


LIMITED = ChatRequest(messages=(ChatMessage("user", "Hi"),), max_tokens=50)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        # OpenAI's reasoning models refuse max_tokens (it is deprecated for every model there).
        ({"kind": "openai", "api_key": "sk-test"}, "max_completion_tokens"),
        ({"kind": "openai_compatible"}, "max_tokens"),
        ({"kind": "ollama"}, "max_tokens"),
        ({"kind": "vllm", "token_limit_field": "max_completion_tokens"}, "max_completion_tokens"),
        ({"kind": "openai", "api_key": "k", "token_limit_field": "max_tokens"}, "max_tokens"),
    ],
)
async def test_the_output_limit_is_named_as_the_provider_wants(
    make_llm: MakeLLM, fake: FakeOpenAIServer, overrides: dict[str, object], field: str
) -> None:
    fake.replies.append(ChatReply(text="Hello."))
    await collect(await make_llm(**overrides), LIMITED)
    body = fake.requests[-1].json
    assert body[field] == 50
    other = {"max_tokens", "max_completion_tokens"} - {field}
    assert not other & set(body)
