"""AnthropicLLM against FakeAnthropicServer: streaming, tools, translation, faults, cancellation."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.integration.llm_providers.conftest import (
    collect,
    collect_text_into,
    tool_calls,
    user_turn,
)
from voxdialog.providers.anthropic import AnthropicLLM, messages_body
from voxdialog.providers.base import (
    ChatMessage,
    ChatRequest,
    ProviderError,
    ToolCall,
    ToolSpec,
)
from voxdialog.testing.fake_anthropic import (
    FakeAnthropicServer,
    Fault,
    Thinking,
    ToolUse,
)

MakeClaude = Callable[..., AnthropicLLM]

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


async def test_tool_use_is_reassembled_with_id_name_and_json_arguments(
    fake_anthropic: FakeAnthropicServer, make_claude: MakeClaude
) -> None:
    first = ToolUse("get_weather", {"city": "Paris", "days": [1, 2]}, id="toolu_01")
    second = ToolUse("get_time", {"zone": "Europe/Paris"}, id="toolu_02")
    fake_anthropic.reset([[Thinking("They want weather and time."), "One moment.", first, second]])

    deltas = await collect(make_claude().chat(user_turn("Weather and time?")))

    assert "".join(d.text for d in deltas) == "One moment."
    calls = tool_calls(deltas)
    assert [(c.id, c.name) for c in calls] == [
        ("toolu_01", "get_weather"),
        ("toolu_02", "get_time"),
    ]
    assert json.loads(calls[0].arguments) == {"city": "Paris", "days": [1, 2]}
    assert json.loads(calls[1].arguments) == {"zone": "Europe/Paris"}
    # The tool fragments arrive in several pieces, each naming its call by index.
    assert sum(1 for d in deltas if d.tool_call_index == 0 and d.tool_arguments) > 1


async def test_thinking_is_never_spoken(
    fake_anthropic: FakeAnthropicServer, make_claude: MakeClaude
) -> None:
    fake_anthropic.reset([[Thinking("secret plan about the answer"), "Hi."]])

    deltas = await collect(make_claude().chat(user_turn("Hello")))

    assert "".join(d.text for d in deltas) == "Hi."


async def test_a_tool_call_without_arguments_gets_an_empty_object(
    fake_anthropic: FakeAnthropicServer, make_claude: MakeClaude
) -> None:
    fake_anthropic.reset([[ToolUse("stop_timer", {}, id="toolu_09")]])

    calls = tool_calls(await collect(make_claude().chat(user_turn("Stop it"))))

    assert calls == [ToolCall(id="toolu_09", name="stop_timer", arguments="{}")]


async def test_request_carries_system_tools_tool_results_and_headers(
    fake_anthropic: FakeAnthropicServer, make_claude: MakeClaude
) -> None:
    call = ToolCall(id="toolu_07", name="get_weather", arguments='{"city": "Oslo"}')
    request = ChatRequest(
        messages=(
            ChatMessage(role="system", content="You are brief."),
            ChatMessage(role="user", content="Weather in Oslo?"),
            ChatMessage(role="assistant", content="", tool_calls=(call,)),
            ChatMessage(role="tool", content='{"temp_c": -3}', tool_call_id="toolu_07"),
            ChatMessage(role="system", content="Use Celsius."),
            ChatMessage(role="user", content="And tomorrow?"),
        ),
        temperature=0.3,
        tools=(WEATHER,),
        tool_choice="auto",
    )

    await collect(make_claude().chat(request))

    recorded = fake_anthropic.requests[0]
    body = recorded.body
    assert body["model"] == "claude-test"
    assert body["max_tokens"] == 1024
    assert body["stream"] is True
    assert body["temperature"] == 0.3
    assert body["system"] == "You are brief.\n\nUse Celsius."
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "input_schema": WEATHER.parameters,
        }
    ]
    assert body["tool_choice"] == {"type": "auto"}
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_07",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            # The tool result and the next user turn merge: roles must alternate.
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_07", "content": '{"temp_c": -3}'},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    assert recorded.headers["anthropic-version"] == "2023-06-01"
    assert recorded.headers["x-api-key"] == "<redacted>"


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice_maps_to_the_messages_api_form(choice: str, wire: dict[str, str]) -> None:
    request = ChatRequest(
        messages=(ChatMessage("user", "hi"),), tools=(WEATHER,), tool_choice=choice
    )

    assert messages_body(request, model="m")["tool_choice"] == wire


def test_empty_messages_are_dropped_and_a_request_max_tokens_wins() -> None:
    request = ChatRequest(
        messages=(
            ChatMessage("user", "Hi"),
            ChatMessage("assistant", ""),
            ChatMessage("user", "?"),
        ),
        max_tokens=50,
    )

    body = messages_body(request, model="m")

    assert body["max_tokens"] == 50
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "?"}]}
    ]
    assert "system" not in body
    assert "tools" not in body


async def test_a_base_url_ending_in_v1_reaches_the_same_endpoint(
    fake_anthropic: FakeAnthropicServer, make_claude: MakeClaude
) -> None:
    claude = make_claude(base_url=f"{fake_anthropic.url}/v1/")

    deltas = await collect(claude.chat(user_turn("Hi")))

    assert "".join(d.text for d in deltas) == "Hello there."
    assert fake_anthropic.requests[0].path == "/v1/messages"


async def test_a_wrong_key_is_a_permanent_error(make_claude: MakeClaude) -> None:
    with pytest.raises(ProviderError) as caught:
        await collect(make_claude(api_key="wrong").chat(user_turn("Hi")))

    assert caught.value.status == 401
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("fault", "retryable", "retry_after_s"),
    [
        (Fault(status=429, error_type="rate_limit_error", retry_after="7"), True, 7.0),
        (Fault(status=529, error_type="overloaded_error"), True, None),
        (Fault(status=500, error_type="api_error", retry_after="0.5"), True, 0.5),
        (Fault(status=503, error_type="api_error"), True, None),
        (Fault(status=400, error_type="invalid_request_error"), False, None),
        (Fault(status=404, error_type="not_found_error"), False, None),
    ],
)
async def test_http_errors_map_to_provider_errors(
    fake_anthropic: FakeAnthropicServer,
    make_claude: MakeClaude,
    fault: Fault,
    retryable: bool,
    retry_after_s: float | None,
) -> None:
    fake_anthropic.inject(fault)

    with pytest.raises(ProviderError) as caught:
        await collect(make_claude().chat(user_turn("Hi")))

    assert caught.value.status == fault.status
    assert caught.value.retryable is retryable
    assert caught.value.retry_after_s == retry_after_s
    assert str(fault.error_type) in str(caught.value)


async def test_a_retry_after_date_becomes_seconds(
    fake_anthropic: FakeAnthropicServer, make_claude: MakeClaude
) -> None:
    fake_anthropic.inject(Fault(status=429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"))

    with pytest.raises(ProviderError) as caught:
        await collect(make_claude().chat(user_turn("Hi")))

    assert caught.value.retry_after_s == 0.0  # a date in the past: retry now


@pytest.mark.parametrize(
    ("error_type", "retryable"),
    [("overloaded_error", True), ("api_error", True), ("invalid_request_error", False)],
)
async def test_an_error_event_mid_stream_raises_after_the_text_so_far(
    fake_anthropic: FakeAnthropicServer,
    make_claude: MakeClaude,
    error_type: str,
    retryable: bool,
) -> None:
    fake_anthropic.reset(["One two three four."])
    fake_anthropic.inject(Fault(error_after=2, error_type=error_type))
    received: list[str] = []

    with pytest.raises(ProviderError) as caught:
        await collect_text_into(received, make_claude().chat(user_turn("Count")))

    assert "".join(received) == "One two"
    assert caught.value.retryable is retryable
    assert error_type in str(caught.value)


async def test_a_slow_first_token_within_the_timeout_still_answers(
    fake_anthropic: FakeAnthropicServer, make_claude: MakeClaude
) -> None:
    fake_anthropic.inject(Fault(first_token_delay_s=0.2))

    deltas = await collect(make_claude(timeout_s=2.0).chat(user_turn("Hi")))

    assert "".join(d.text for d in deltas) == "Hello there."


async def test_one_provider_serves_turns_one_after_another(
    fake_anthropic: FakeAnthropicServer, make_claude: MakeClaude
) -> None:
    fake_anthropic.reset(["First.", "Second."])
    claude = make_claude()

    answers = ["".join(d.text for d in await collect(claude.chat(user_turn("Hi")))) for _ in "ab"]

    assert answers == ["First.", "Second."]
