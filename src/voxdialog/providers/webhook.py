"""WebhookLLM: a chat turn POSTed to a webhook (n8n style), answered in JSON or streamed text."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, TypeGuard

import httpx

from voxdialog.providers.base import (
    ChatDelta,
    ChatRequest,
    ProviderError,
    ProviderInfo,
)
from voxdialog.providers.http import ProviderClient, sse_events
from voxdialog.settings import ProviderSettings

#: Media types whose body is one JSON value per line.
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})
#: ``type`` values of n8n's streamed chunks (``{"type": "item", "content": "..."}``).
_STREAM_CHUNK_TYPES = frozenset({"begin", "item", "end", "error"})
#: Keys holding the answer in a JSON reply, in the order they are tried.
REPLY_KEYS = ("text", "output", "reply")


def webhook_body(request: ChatRequest, *, model: str | None) -> dict[str, Any]:
    """The JSON a webhook receives: the messages, the model (or null) and the tools."""
    return {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "model": model or None,
        "tools": [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in request.tools
        ],
        "session": None,
    }


def reply_text(payload: object) -> str | None:
    """The answer in a webhook's JSON, or None when it holds none.

    Tried in order: ``text``, ``output``, ``reply``, then an OpenAI ``chat.completion``
    (``choices[0].message.content``) or ``chat.completion.chunk`` (``choices[0].delta.content``).
    A list (n8n answers with its items) gives the answer of its first element.
    """
    if isinstance(payload, list):
        return reply_text(payload[0]) if payload else None
    if not isinstance(payload, dict):
        return None
    for key in REPLY_KEYS:
        if isinstance(value := payload.get(key), str):
            return value
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        for part in ("message", "delta"):
            message = choices[0].get(part)
            if isinstance(message, dict) and isinstance(content := message.get("content"), str):
                return content
    return None


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _is_stream_chunk(value: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and value.get("type") in _STREAM_CHUNK_TYPES


class WebhookLLM:
    """An ``LLM`` that POSTs the chat to a webhook (an n8n workflow, say) and speaks its answer.

    The answer may be JSON (see ``reply_text``), plain text (streamed as it arrives), n8n's
    streamed NDJSON chunks (``{"type": "item", "content": ...}``, whatever the Content-Type
    says), or server-sent events. Tools are described to the webhook; it answers in text.

    Args:
        settings: ``base_url`` (the webhook URL, required), ``model`` (passed along), the key
            (sent as ``Authorization: Bearer``), ``timeout_s`` (to the first text, then the
            longest silence mid-stream), ``connect_timeout_s`` and extra ``headers``.
        name: The provider name, for ``info`` and error messages.

    Raises:
        ValueError: ``settings.base_url`` is not set.
    """

    def __init__(self, settings: ProviderSettings, *, name: str) -> None:
        if not settings.base_url:
            raise ValueError(f"webhook provider {name!r} needs base_url (the webhook URL)")
        self.info = ProviderInfo(name=name, model=settings.model or "webhook", streaming=True)
        self.url = settings.base_url
        self._settings = settings
        headers = {
            "content-type": "application/json",
            "accept": "application/json, application/x-ndjson, text/event-stream, text/plain",
        }
        if (key := settings.key()) is not None:
            headers["authorization"] = f"Bearer {key}"
        headers.update(settings.headers)
        self._http = ProviderClient(settings, name=name, base_url=self.url, headers=headers)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        """Stream the webhook's answer to ``request``; cancel the iteration to abort it.

        Raises:
            ProviderTimeout: No text within ``timeout_s`` (or a stall after it).
            ProviderUnavailable: The webhook cannot be reached.
            ProviderError: The webhook refused (``status``, ``retry_after_s``), reported a
                workflow error, or answered something that holds no text.
        """
        body = webhook_body(request, model=self._settings.model)
        async with aclosing(self._http.stream("", self._texts, json=body)) as texts:
            async for text in texts:
                yield ChatDelta(text=text)

    def _workflow_error(self, value: object, *, fallback: str) -> ProviderError:
        detail = fallback
        if isinstance(value, dict):
            detail = value.get("content") or value.get("message") or value.get("error") or detail
        # The workflow failed inside (often its own model call): elsewhere may work.
        return ProviderError(f"{self.info.name}: {str(detail)[:200]}", retryable=True)

    def _chunk_text(self, value: object) -> str:
        """The text in one streamed JSON value (an n8n chunk, an OpenAI chunk, ...)."""
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and value.get("type") in _STREAM_CHUNK_TYPES:
            if value["type"] == "error":
                raise self._workflow_error(value, fallback="workflow error")
            content = value.get("content")
            return content if value["type"] == "item" and isinstance(content, str) else ""
        return reply_text(value) or ""

    def _line_text(self, line: str, value: object) -> str:
        if not line.strip():
            return ""
        return line if value is None else self._chunk_text(value)

    def _unfinished(self, what: str) -> ProviderError:
        # A clean end without an answer (a proxy cutting it, a workflow crashing) is a failed
        # attempt, so a chain asks the next provider instead of speaking an empty reply.
        return ProviderError(f"{self.info.name}: the answer ended {what}", retryable=True)

    async def _texts(self, response: httpx.Response) -> AsyncGenerator[str, None]:
        media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media == "text/event-stream":
            said = False
            async for event, data in sse_events(response.aiter_lines()):
                if data.strip() == "[DONE]":
                    return
                value = _json_or_none(data)
                if event == "error":
                    raise self._workflow_error(value, fallback=data or "workflow error")
                if text := (data if value is None else self._chunk_text(value)):
                    said = True
                    yield text
            if not said:
                raise self._unfinished("before any text or [DONE]")
        elif media in NDJSON_TYPES or media == "application/json" or media.endswith("+json"):
            async for text in self._json_texts(response, lines=media in NDJSON_TYPES):
                yield text
        else:
            said = False
            async for text in response.aiter_text():
                if text:
                    said = True
                    yield text
            if not said:
                raise self._unfinished("before any text")

    async def _json_texts(
        self, response: httpx.Response, *, lines: bool
    ) -> AsyncGenerator[str, None]:
        """Texts of a JSON body: one value per line when streamed, else one whole value.

        n8n streams its chunks as ``application/json``, so a body whose first line is such a
        chunk is read line by line whatever its media type says. n8n ends its stream with an
        ``end`` chunk: without one the answer was cut short (other line streams have no end
        marker, so only one that said nothing at all counts as cut).
        """
        mode = "lines" if lines else ""
        whole: list[str] = []
        n8n = ended = said = False
        async for line in response.aiter_lines():
            value = _json_or_none(line) if line.strip() else None
            if not mode and line.strip():
                mode = "lines" if _is_stream_chunk(value) else "whole"
            if mode == "lines":
                if _is_stream_chunk(value):
                    n8n = True
                    ended = ended or value.get("type") == "end"
                if text := self._line_text(line, value):
                    said = True
                    yield text
            else:
                whole.append(line)
        if mode == "lines":
            if not (ended or (said and not n8n)):
                raise self._unfinished("before its end chunk" if n8n else "before any text")
            return
        payload = _json_or_none("\n".join(whole))
        answer = reply_text(payload)
        if answer is None:
            raise ProviderError(f"{self.info.name}: the answer holds no text", retryable=True)
        if answer:
            yield answer
