"""WebhookLLM against FakeWebhookServer: every answer style, faults and cancellation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.llm_providers.conftest import (
    collect,
    user_turn,
)
from voxdialog.providers.base import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    ProviderError,
    ProviderTimeout,
    ToolSpec,
)
from voxdialog.providers.webhook import WebhookLLM, reply_text
from voxdialog.settings import ProviderSettings
from voxdialog.testing.fake_anthropic import Fault
from voxdialog.testing.fake_webhook import FakeWebhookServer, JsonShape, SsePayload, WebhookMode

MakeWebhook = Callable[..., WebhookLLM]

REPLY = "Sure, the kitchen lights are on now."


def spoken(deltas: list[ChatDelta]) -> str:
    return "".join(d.text for d in deltas)


async def first_then_state(webhook: WebhookLLM, fake: FakeWebhookServer) -> tuple[str, int, str]:
    """The first text, how many streams had completed when it came, and the whole text."""
    stream = webhook.chat(user_turn("Lights on"))
    first = await anext(stream)
    completed_at_first = fake.streams_completed
    rest = await collect(stream)
    return first.text, completed_at_first, first.text + spoken(rest)


@pytest.mark.parametrize("shape", ["text", "output", "reply", "openai", "n8n"])
async def test_a_json_answer_is_spoken_whatever_key_holds_it(
    fake_webhook: FakeWebhookServer, make_webhook: MakeWebhook, shape: JsonShape
) -> None:
    fake_webhook.reset([REPLY], mode="json", json_shape=shape)

    deltas = await collect(make_webhook().chat(user_turn("Lights on")))

    assert spoken(deltas) == REPLY


async def test_the_request_carries_messages_model_and_tools(
    fake_webhook: FakeWebhookServer, make_webhook: MakeWebhook
) -> None:
    tool = ToolSpec("lights", "Switch the lights.", {"type": "object", "properties": {}})
    request = ChatRequest(
        messages=(ChatMessage("system", "Be brief."), ChatMessage("user", "Lights on")),
        tools=(tool,),
    )

    await collect(make_webhook(model="agent-7", api_key="hook-secret").chat(request))

    recorded = fake_webhook.requests[0]
    assert recorded.path == "/webhook/voice"
    assert recorded.body == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Lights on"},
        ],
        "model": "agent-7",
        "tools": [
            {"name": "lights", "description": "Switch the lights.", "parameters": tool.parameters}
        ],
        "session": None,
    }
    assert recorded.headers["authorization"] == "<redacted>"
    assert "hook-secret" not in str(recorded)


async def test_no_model_is_sent_as_null(
    fake_webhook: FakeWebhookServer, make_webhook: MakeWebhook
) -> None:
    await collect(make_webhook().chat(user_turn("Hi")))

    assert fake_webhook.requests[0].body["model"] is None
    assert "authorization" not in fake_webhook.requests[0].headers


@pytest.mark.parametrize(
    ("mode", "content_type"),
    [
        ("plain", None),
        ("ndjson", None),  # n8n streams its chunks as application/json
        ("ndjson", "application/x-ndjson"),
        ("sse", None),
    ],
)
async def test_a_streamed_answer_is_spoken_as_it_arrives(
    fake_webhook: FakeWebhookServer,
    make_webhook: MakeWebhook,
    mode: WebhookMode,
    content_type: str | None,
) -> None:
    fake_webhook.reset([REPLY], mode=mode, content_type=content_type, delta_s=0.05)

    first, completed_at_first, whole = await first_then_state(make_webhook(), fake_webhook)

    assert first == "Sure,"
    assert completed_at_first == 0  # the first words came before the server had finished
    assert whole == REPLY


@pytest.mark.parametrize("payload", ["text", "json", "openai"])
async def test_sse_data_lines_of_every_shape_are_spoken(
    fake_webhook: FakeWebhookServer, make_webhook: MakeWebhook, payload: SsePayload
) -> None:
    fake_webhook.reset([REPLY], mode="sse", sse_payload=payload)

    deltas = await collect(make_webhook().chat(user_turn("Lights on")))

    assert spoken(deltas) == REPLY
    assert len(deltas) > 1


async def test_a_json_answer_without_text_is_an_error(
    fake_webhook: FakeWebhookServer, make_webhook: MakeWebhook
) -> None:
    fake_webhook.reset([REPLY], mode="plain", content_type="application/json")

    with pytest.raises(ProviderError, match="holds no text"):
        await collect(make_webhook().chat(user_turn("Hi")))


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ({"text": "a", "output": "b"}, "a"),
        ({"output": "b", "reply": "c"}, "b"),
        ({"reply": "c"}, "c"),
        ({"choices": [{"message": {"role": "assistant", "content": "d"}}]}, "d"),
        ({"choices": [{"delta": {"content": "e"}}]}, "e"),
        ([{"output": "f"}, {"output": "g"}], "f"),
        ({"text": ""}, ""),
        ({"answer": "x"}, None),
        ([], None),
        ("plain", None),
    ],
)
def test_reply_text_picks_the_first_key_present(payload: object, text: str | None) -> None:
    assert reply_text(payload) == text


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("mode", "fault"),
    [
        ("json", Fault(hang=True)),
        ("json", Fault(first_token_delay_s=5.0)),
    ],
)
async def test_no_answer_within_the_timeout_times_out(
    fake_webhook: FakeWebhookServer, make_webhook: MakeWebhook, mode: WebhookMode, fault: Fault
) -> None:
    fake_webhook.reset(mode=mode)
    fake_webhook.inject(fault)

    with pytest.raises(ProviderTimeout):
        await collect(make_webhook(timeout_s=0.5).chat(user_turn("Hi")))


def test_a_webhook_needs_a_url() -> None:
    with pytest.raises(ValueError, match="base_url"):
        WebhookLLM(ProviderSettings(kind="webhook"), name="n8n")
