"""Fake Anthropic and webhook servers (one per module, reset per test) and provider factories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from voxdialog.providers.anthropic import AnthropicLLM
from voxdialog.providers.base import ChatDelta, ChatMessage, ChatRequest, ToolCall
from voxdialog.providers.webhook import WebhookLLM
from voxdialog.settings import ProviderSettings
from voxdialog.testing.fake_anthropic import FakeAnthropicServer
from voxdialog.testing.fake_webhook import FakeWebhookServer

#: The key the fake Anthropic server accepts.
ANTHROPIC_KEY = "sk-ant-test-key"


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(api_key=ANTHROPIC_KEY) as fake:
        yield fake


@pytest.fixture
def fake_anthropic(anthropic_server: FakeAnthropicServer) -> FakeAnthropicServer:
    anthropic_server.reset()
    return anthropic_server


@pytest.fixture(scope="module")
def webhook_server() -> Iterator[FakeWebhookServer]:
    with FakeWebhookServer() as fake:
        yield fake


@pytest.fixture
def fake_webhook(webhook_server: FakeWebhookServer) -> FakeWebhookServer:
    webhook_server.reset()
    return webhook_server


@pytest.fixture
async def make_claude(
    fake_anthropic: FakeAnthropicServer,
) -> AsyncIterator[Callable[..., AnthropicLLM]]:
    """Build AnthropicLLMs pointed at the fake (settings overridable); closed after the test."""
    built: list[AnthropicLLM] = []

    def make(**overrides: Any) -> AnthropicLLM:
        fields: dict[str, Any] = {
            "kind": "anthropic",
            "base_url": fake_anthropic.url,
            "model": "claude-test",
            "api_key": ANTHROPIC_KEY,
            "timeout_s": 2.0,
        }
        llm = AnthropicLLM(ProviderSettings(**(fields | overrides)), name="claude")
        built.append(llm)
        return llm

    yield make
    for llm in built:
        await llm.aclose()


@pytest.fixture
async def make_webhook(
    fake_webhook: FakeWebhookServer,
) -> AsyncIterator[Callable[..., WebhookLLM]]:
    """Build WebhookLLMs pointed at the fake (settings overridable); closed after the test."""
    built: list[WebhookLLM] = []

    def make(**overrides: Any) -> WebhookLLM:
        fields: dict[str, Any] = {"kind": "webhook", "base_url": fake_webhook.url, "timeout_s": 2.0}
        llm = WebhookLLM(ProviderSettings(**(fields | overrides)), name="n8n")
        built.append(llm)
        return llm

    yield make
    for llm in built:
        await llm.aclose()


async def collect(stream: AsyncIterator[ChatDelta]) -> list[ChatDelta]:
    """Every delta of a stream."""
    return [delta async for delta in stream]


async def collect_text_into(received: list[str], stream: AsyncIterator[ChatDelta]) -> None:
    """Append each delta's text to ``received``, which keeps what came before a failure."""
    async for delta in stream:
        received.append(delta.text)


def tool_calls(deltas: list[ChatDelta]) -> list[ToolCall]:
    """Tool calls reassembled from their deltas, OpenAI style (by ``tool_call_index``)."""
    calls: dict[int, dict[str, str]] = {}
    for delta in deltas:
        if delta.tool_call_index is None:
            continue
        call = calls.setdefault(delta.tool_call_index, {"id": "", "name": "", "arguments": ""})
        call["id"] = delta.tool_call_id or call["id"]
        call["name"] = delta.tool_name or call["name"]
        call["arguments"] += delta.tool_arguments
    return [ToolCall(**calls[i]) for i in sorted(calls)]


def user_turn(text: str) -> ChatRequest:
    """A request of one user message."""
    return ChatRequest(messages=(ChatMessage(role="user", content=text),))
