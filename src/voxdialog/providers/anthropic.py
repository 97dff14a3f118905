"""AnthropicLLM: Claude over the Messages API, streamed with httpx (no SDK)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from voxdialog.providers.base import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    ProviderError,
    ProviderInfo,
)
from voxdialog.providers.http import ProviderClient, sse_events
from voxdialog.settings import ProviderSettings

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024

#: Mid-stream error types where trying again (or elsewhere) can help, with their HTTP status.
_RETRYABLE_STREAM_ERRORS = {
    "overloaded_error": 529,
    "api_error": 500,
    "rate_limit_error": 429,
    "timeout_error": 504,
}


def _content_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content}
        ]
    # The API rejects empty text blocks (an assistant turn that only called tools has none).
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    if message.role == "assistant":
        for call in message.tool_calls:
            try:
                tool_input = json.loads(call.arguments) if call.arguments else {}
            except ValueError:
                tool_input = {}
            # ``input`` must be an object; a model that wrote broken JSON gets an empty one.
            tool_input = tool_input if isinstance(tool_input, dict) else {}
            blocks.append(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input}
            )
    return blocks


def _tool_choice(choice: str) -> dict[str, str]:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def messages_body(
    request: ChatRequest, *, model: str, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> dict[str, Any]:
    """The streaming Messages API body for ``request``.

    System messages become ``system``; tool calls and results become ``tool_use`` and
    ``tool_result`` blocks; consecutive messages of one role merge, since roles must alternate.

    Args:
        request: The provider-neutral request.
        model: The model to ask for.
        default_max_tokens: ``max_tokens`` when the request sets none (the API requires it).
    """
    system = "\n\n".join(m.content for m in request.messages if m.role == "system" and m.content)
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _content_blocks(message)
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens or default_max_tokens,
        "messages": messages,
        "stream": True,
    }
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
        body["tool_choice"] = _tool_choice(request.tool_choice)
    return body


def _error_detail(body: bytes) -> str:
    """``type: message`` from an Anthropic error body, or what can be made of it."""
    try:
        error = json.loads(body)["error"]
        return f"{error.get('type', 'error')}: {str(error.get('message', ''))[:200]}"
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"error: {body[:200].decode('utf-8', 'replace')}"


class _EventTranslator:
    """Turns Messages API stream events into ``ChatDelta``s (one per answer)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tool_of_block: dict[int, int] = {}
        self._tool_has_arguments: dict[int, bool] = {}
        self.stopped = False

    def feed(self, event: str, data: str) -> list[ChatDelta]:
        if event == "ping" or not data:
            return []
        payload = json.loads(data)
        kind = event or payload.get("type", "")
        if kind == "error":
            error = payload.get("error", {})
            error_type = str(error.get("type", "error"))
            status = _RETRYABLE_STREAM_ERRORS.get(error_type)
            raise ProviderError(
                f"{self._name}: stream error {error_type}: {str(error.get('message', ''))[:200]}",
                retryable=status is not None,
                status=status,
            )
        if kind == "message_stop":
            self.stopped = True
            return []
        index = payload.get("index")
        if kind == "content_block_start":
            block = payload["content_block"]
            if block.get("type") == "tool_use":
                tool = self._tool_of_block[index] = len(self._tool_of_block)
                self._tool_has_arguments[tool] = False
                return [
                    ChatDelta(
                        tool_call_index=tool, tool_call_id=block["id"], tool_name=block["name"]
                    )
                ]
            if block.get("type") == "text" and block.get("text"):
                return [ChatDelta(text=block["text"])]
            return []
        if kind == "content_block_delta":
            delta = payload["delta"]
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [ChatDelta(text=delta["text"])]
            if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                tool = self._tool_of_block[index]
                self._tool_has_arguments[tool] = True
                return [ChatDelta(tool_call_index=tool, tool_arguments=delta["partial_json"])]
            return []  # thinking, signatures and citations are never spoken
        if kind == "content_block_stop" and index in self._tool_of_block:
            tool = self._tool_of_block[index]
            if not self._tool_has_arguments[tool]:
                # A call without arguments streams none; "{}" keeps it valid JSON downstream.
                return [ChatDelta(tool_call_index=tool, tool_arguments="{}")]
        return []


class AnthropicLLM:
    """An ``LLM`` speaking the Anthropic Messages API (streaming, tools, cancellable).

    Args:
        settings: ``base_url`` (default ``https://api.anthropic.com``), ``model``, the key,
            ``timeout_s`` (to the first token, then the longest silence mid-stream),
            ``connect_timeout_s`` and extra ``headers``.
        name: The provider name, for ``info`` and error messages.
        max_tokens: ``max_tokens`` when a request sets none.
    """

    def __init__(
        self, settings: ProviderSettings, *, name: str, max_tokens: int = DEFAULT_MAX_TOKENS
    ) -> None:
        self.info = ProviderInfo(name=name, model=settings.model, streaming=True)
        self._settings = settings
        self._max_tokens = max_tokens
        base = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"
        headers = {
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
            "accept": "text/event-stream",
        }
        if (key := settings.key()) is not None:
            headers["x-api-key"] = key
        headers.update(settings.headers)
        self._http = ProviderClient(settings, name=name, base_url=self.url, headers=headers)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        """Stream the answer to ``request``; cancel (or close) the iteration to abort it.

        Raises:
            ProviderTimeout: No first token within ``timeout_s`` (or a stall after it).
            ProviderUnavailable: The server cannot be reached.
            ProviderError: The API refused (``status``, ``retry_after_s``) or the stream broke.
        """
        body = messages_body(
            request, model=self._settings.model, default_max_tokens=self._max_tokens
        )
        deltas = self._http.stream(
            "", self._deltas, json=body, awaited="first token", detail=_error_detail
        )
        async with aclosing(deltas):
            async for delta in deltas:
                yield delta

    async def _deltas(self, response: httpx.Response) -> AsyncGenerator[ChatDelta, None]:
        translator = _EventTranslator(self.info.name)
        async for event, data in sse_events(response.aiter_lines()):
            try:
                deltas = translator.feed(event, data)
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise ProviderError(
                    f"{self.info.name}: malformed stream event {event!r}", retryable=True
                ) from e
            for delta in deltas:
                yield delta
            if translator.stopped:
                return
        raise ProviderError(f"{self.info.name}: stream ended before message_stop", retryable=True)
