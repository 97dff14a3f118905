"""The official ``anthropic`` SDK against FakeAnthropicServer: the fake speaks the real protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import pytest
from anthropic.types import MessageParam

from tests.integration.llm_providers.conftest import ANTHROPIC_KEY
from voxdialog.testing.fake_anthropic import FakeAnthropicServer, Fault, Thinking, ToolUse

HELLO: list[MessageParam] = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
async def sdk(fake_anthropic: FakeAnthropicServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(
        base_url=fake_anthropic.url, api_key=ANTHROPIC_KEY, max_retries=0
    )
    yield client
    await client.close()


async def test_official_sdk_streams_text_from_the_fake(
    fake_anthropic: FakeAnthropicServer, sdk: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.reset(["Hello there, nice to meet you."])
    async with sdk.messages.stream(model="claude-test", max_tokens=64, messages=HELLO) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert len(pieces) > 1
    assert "".join(pieces) == "Hello there, nice to meet you."
    assert final.stop_reason == "end_turn"
    assert final.model == "claude-test"
    recorded = fake_anthropic.requests[0]
    assert recorded.path == "/v1/messages"
    assert recorded.body["stream"] is True
    # SDK 2.x sends the key as a bearer token; the fake records that it came, not what it is.
    assert recorded.headers["authorization"] == "<redacted>"
    assert ANTHROPIC_KEY not in str(recorded)


async def test_official_sdk_reassembles_thinking_text_and_tool_use_from_the_fake(
    fake_anthropic: FakeAnthropicServer, sdk: anthropic.AsyncAnthropic
) -> None:
    call = ToolUse("get_weather", {"city": "Paris", "unit": "celsius"}, id="toolu_01A")
    fake_anthropic.reset([[Thinking("The user wants weather."), "Let me check.", call]])
    async with sdk.messages.stream(model="claude-test", max_tokens=64, messages=HELLO) as stream:
        final = await stream.get_final_message()

    thinking, text, tool_use = final.content
    assert thinking.type == "thinking"
    assert thinking.thinking == "The user wants weather."
    assert text.type == "text"
    assert text.text == "Let me check."
    assert tool_use.type == "tool_use"
    assert (tool_use.id, tool_use.name) == ("toolu_01A", "get_weather")
    assert tool_use.input == {"city": "Paris", "unit": "celsius"}
    assert final.stop_reason == "tool_use"


async def test_official_sdk_raw_stream_has_the_real_event_order(
    fake_anthropic: FakeAnthropicServer, sdk: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.reset([["Hi.", ToolUse("ping", {})]])
    stream = await sdk.messages.create(
        model="claude-test", max_tokens=64, messages=HELLO, stream=True
    )
    events = [event async for event in stream]

    kinds = [event.type for event in events]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    starts = [e for e in events if e.type == "content_block_start"]
    assert [(e.index, e.content_block.type) for e in starts] == [(0, "text"), (1, "tool_use")]
    for index in (0, 1):
        block_kinds = [e.type for e in events if getattr(e, "index", None) == index]
        assert block_kinds[0] == "content_block_start"
        assert block_kinds[-1] == "content_block_stop"
        assert set(block_kinds[1:-1]) <= {"content_block_delta"}


async def test_official_sdk_gets_a_whole_message_when_not_streaming(
    fake_anthropic: FakeAnthropicServer, sdk: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.reset(["A plain answer."])
    message = await sdk.messages.create(model="claude-test", max_tokens=64, messages=HELLO)

    assert message.content[0].type == "text"
    assert message.content[0].text == "A plain answer."
    assert fake_anthropic.streams_completed == 0


async def test_official_sdk_reads_the_fakes_error_answers(
    fake_anthropic: FakeAnthropicServer, sdk: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.inject(Fault(status=429, error_type="rate_limit_error", retry_after="7"))
    with pytest.raises(anthropic.RateLimitError) as caught:
        await sdk.messages.create(model="claude-test", max_tokens=64, messages=HELLO)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"

    fake_anthropic.inject(Fault(error_after=1, error_type="overloaded_error"))
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        async with sdk.messages.stream(
            model="claude-test", max_tokens=64, messages=HELLO
        ) as stream:
            await stream.get_final_message()


async def test_official_sdk_is_refused_with_a_wrong_key(
    fake_anthropic: FakeAnthropicServer,
) -> None:
    client = anthropic.AsyncAnthropic(base_url=fake_anthropic.url, api_key="wrong", max_retries=0)
    try:
        with pytest.raises(anthropic.AuthenticationError):
            await client.messages.create(model="claude-test", max_tokens=64, messages=HELLO)
    finally:
        await client.close()
