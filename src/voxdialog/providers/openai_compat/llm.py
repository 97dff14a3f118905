"""OpenAICompatLLM: streamed chat completions from any OpenAI-compatible server."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from voxdialog.providers.base import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    ProviderError,
    ProviderInfo,
)
from voxdialog.providers.http import (
    ProviderClient,
    bearer_headers,
    is_retryable_status,
    sse_events,
)
from voxdialog.providers.openai_compat.presets import resolve_base_url
from voxdialog.settings import ProviderSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChatUsage:
    """Token counts a server reported for one answer."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def _message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name and message.role != "tool":
        out["name"] = message.name
    if message.role == "assistant" and message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
    return out


def chat_payload(
    request: ChatRequest,
    *,
    model: str,
    stream: bool = True,
    token_limit_field: str = "max_tokens",
) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions`` for ``request``.

    The output limit goes in ``token_limit_field``: OpenAI deprecated ``max_tokens`` and its
    reasoning models refuse it (so a chain's health probe, which asks for one token, never
    passed), while many OpenAI-compatible servers know only ``max_tokens``.

    ``tool_choice`` is sent only with tools (some servers reject it alone); a choice that is
    not ``auto``, ``none`` or ``required`` names the one function the model must call.
    """
    body: dict[str, Any] = {"model": model, "messages": [_message(m) for m in request.messages]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                },
            }
            for tool in request.tools
        ]
        choice = request.tool_choice
        body["tool_choice"] = (
            choice
            if choice in ("auto", "none", "required")
            else {"type": "function", "function": {"name": choice}}
        )
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body[token_limit_field] = request.max_tokens
    return body


def token_limit_field(settings: ProviderSettings) -> str:
    """The field a provider's chat requests name their output limit with."""
    if settings.token_limit_field is not None:
        return settings.token_limit_field
    return "max_completion_tokens" if settings.kind == "openai" else "max_tokens"


def _usage(data: object) -> ChatUsage | None:
    if not isinstance(data, dict):
        return None
    prompt, completion = data.get("prompt_tokens"), data.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    total = data.get("total_tokens")
    return ChatUsage(prompt, completion, total if isinstance(total, int) else prompt + completion)


def _arguments(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        # Ollama's native API writes arguments as an object; a few proxies pass it through.
        return json.dumps(value)
    return ""


class ChunkParser:
    """Turns the JSON of streamed chunks into ``ChatDelta``s; one parser per answer.

    Never yields reasoning (``reasoning_content``, ``reasoning``). Tool-call fragments keep
    their ``index``; servers that leave it out get one from the call ``id``. A call's ``id``
    and ``name`` are passed on once even if a server repeats them.

    Args:
        provider: The provider name, for error messages.
    """

    def __init__(self, *, provider: str) -> None:
        self._provider = provider
        #: The usage the server reported, if it did.
        self.usage: ChatUsage | None = None
        self._index_of_id: dict[str, int] = {}
        self._ids_sent: set[int] = set()
        self._names_sent: set[int] = set()
        self._calls = 0
        self._last_index: int | None = None
        #: A finish reason arrived: the answer is whole even if ``[DONE]`` never comes.
        self.finished = False

    def feed(self, data: str) -> list[ChatDelta]:
        """Parse one ``data:`` payload of the stream.

        Raises:
            ProviderError: The payload is not a JSON object (retryable), or it is an error.
        """
        try:
            chunk = json.loads(data)
        except ValueError as e:
            raise self._malformed() from e
        if not isinstance(chunk, dict):
            raise self._malformed()
        self._check_error(chunk)
        self.usage = _usage(chunk.get("usage")) or self.usage
        groq = chunk.get("x_groq")
        if isinstance(groq, dict):
            self.usage = _usage(groq.get("usage")) or self.usage
        out: list[ChatDelta] = []
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # only the first candidate (n > 1 is never asked for)
            delta = choice.get("delta")
            if isinstance(delta, dict):
                out.extend(self._deltas(delta))
            if choice.get("finish_reason") == "error":  # OpenRouter, after an error object
                raise ProviderError(f"{self._provider}: generation failed", retryable=True)
            if choice.get("finish_reason"):
                self.finished = True
        return out

    def completion(self, body: bytes) -> list[ChatDelta]:
        """Parse a whole (non-streamed) completion, for servers that ignore ``stream``.

        Raises:
            ProviderError: The body is not a completion, or it is an error.
        """
        try:
            data = json.loads(body)
        except ValueError as e:
            raise self._malformed() from e
        if not isinstance(data, dict):
            raise self._malformed()
        self._check_error(data)
        self.usage = _usage(data.get("usage"))
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._malformed()
        message = choices[0].get("message")
        return self._deltas(message) if isinstance(message, dict) else []

    def _deltas(self, delta: dict[str, Any]) -> list[ChatDelta]:
        out: list[ChatDelta] = []
        content = delta.get("content")
        if isinstance(content, str) and content:
            out.append(ChatDelta(text=content))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict) and (piece := self._tool_delta(call)) is not None:
                out.append(piece)
        return out

    def _tool_delta(self, call: dict[str, Any]) -> ChatDelta | None:
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        index = call.get("index")
        if not isinstance(index, int):
            if call_id is not None:
                index = self._index_of_id.get(call_id, self._calls)
            else:
                index = self._last_index if self._last_index is not None else 0
        self._calls = max(self._calls, index + 1)
        self._last_index = index
        if call_id is not None:
            self._index_of_id.setdefault(call_id, index)
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        name = function.get("name") if isinstance(function.get("name"), str) else None
        arguments = _arguments(function.get("arguments"))
        new_id = call_id if call_id is not None and index not in self._ids_sent else None
        new_name = name if name and index not in self._names_sent else None
        if new_id is None and new_name is None and not arguments:
            return None
        if new_id is not None:
            self._ids_sent.add(index)
        if new_name is not None:
            self._names_sent.add(index)
        return ChatDelta(
            tool_call_index=index,
            tool_call_id=new_id,
            tool_name=new_name,
            tool_arguments=arguments,
        )

    def _check_error(self, chunk: dict[str, Any]) -> None:
        error = chunk.get("error")
        if not error and chunk.get("object") == "error":  # vLLM
            error = chunk
        if not error:
            return
        message = (error.get("message") if isinstance(error, dict) else error) or "unknown error"
        code = error.get("code") if isinstance(error, dict) else None
        status = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
        raise ProviderError(
            f"{self._provider}: error mid-stream: {str(message)[:300]}",
            # No status: most mid-stream errors are the server's (overload, upstream down).
            retryable=is_retryable_status(status) if status is not None else True,
            status=status,
        )

    def _malformed(self) -> ProviderError:
        return ProviderError(f"{self._provider}: malformed stream chunk", retryable=True)


class OpenAICompatLLM:
    """A chat model behind ``POST {base}/chat/completions`` (OpenAI, Groq, Ollama, vLLM, ...).

    Args:
        settings: Kind (for the default base URL), model, key, timeouts and extra headers.
            ``timeout_s`` limits the wait for the first streamed chunk, and then each read.
        name: The provider name (``info.name``, error messages).
    """

    def __init__(self, settings: ProviderSettings, *, name: str) -> None:
        self.info = ProviderInfo(name=name, model=settings.model, streaming=True)
        self._model = settings.model
        self._token_limit_field = token_limit_field(settings)
        self._http = ProviderClient(
            settings,
            name=name,
            base_url=resolve_base_url(settings),
            headers=bearer_headers(settings),
        )
        #: Usage of the last answer that reported one (for metrics; answers overwrite it).
        self.last_usage: ChatUsage | None = None

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        """Stream the answer to ``request``; closing the iteration aborts the generation.

        Raises:
            ProviderTimeout: No chunk within ``timeout_s`` (comment lines do not count).
            ProviderError: HTTP error status, error object or malformed chunk mid-stream,
                or the connection failed.
        """
        payload = chat_payload(
            request, model=self._model, token_limit_field=self._token_limit_field
        )
        parser = ChunkParser(provider=self.info.name)
        batches = self._http.stream(
            "chat/completions", functools.partial(self._batches, parser=parser), json=payload
        )
        async with contextlib.aclosing(batches):
            async for batch in batches:
                for delta in batch:
                    yield delta
        self.last_usage = parser.usage or self.last_usage
        if parser.usage is not None:
            logger.debug("llm usage", extra={"provider": self.info.name, "usage": parser.usage})

    async def _batches(
        self, response: httpx.Response, *, parser: ChunkParser
    ) -> AsyncGenerator[list[ChatDelta], None]:
        """The deltas of each streamed chunk, until ``[DONE]`` (one batch per chunk, so the
        first-chunk deadline is met by a chunk without content too, but not by a comment).

        Raises:
            ProviderError: (retryable) The body ended with neither a finish reason nor
                ``[DONE]``: a proxy cut it or the server crashed. Taking that for a finished
                answer would make an empty or half reply out of a failed attempt.
        """
        if response.headers.get("content-type", "").startswith("application/json"):
            yield parser.completion(await response.aread())
            return
        async for event in sse_events(response.aiter_lines()):
            if event.data.strip() == "[DONE]":
                return
            if event.data:
                yield parser.feed(event.data)
        if not parser.finished:
            raise ProviderError(
                f"{self.info.name}: stream ended before a finish reason or [DONE]", retryable=True
            )

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()
