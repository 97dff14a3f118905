"""FakeWebhookServer: an n8n-style chat webhook answering in JSON, text, NDJSON or SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Iterable
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voxdialog.testing.fake_http import DroppedConnection, wait_for_disconnect
from voxdialog.testing.fake_scripted import Fault, ScriptedFake, word_pieces

#: How the fake answers: one JSON object, streamed plain text, n8n's NDJSON chunks, or SSE.
WebhookMode = Literal["json", "plain", "ndjson", "sse"]
#: Where a JSON answer puts the text (``openai``: a chat.completion; ``n8n``: ``[{"output"}]``).
JsonShape = Literal["text", "output", "reply", "openai", "n8n"]
#: What each SSE ``data:`` line holds: raw text, ``{"text": ...}``, or an OpenAI chunk.
SsePayload = Literal["text", "json", "openai"]


def _json_answer(text: str, shape: JsonShape) -> Any:
    if shape == "openai":
        message = {"role": "assistant", "content": text}
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }
    if shape == "n8n":
        return [{"output": text}]
    return {shape: text}


def _sse_data(piece: str, payload: SsePayload) -> str:
    if payload == "text":
        # A piece with a newline would need several data lines; the fake never sends one.
        return f"data: {piece}\n\n"
    if payload == "openai":
        chunk = {"object": "chat.completion.chunk", "choices": [{"delta": {"content": piece}}]}
        return f"data: {json.dumps(chunk)}\n\n"
    return f"data: {json.dumps({'text': piece})}\n\n"


class FakeWebhookServer(ScriptedFake[str]):
    """A local webhook at ``url`` answering each POST with the next scripted text.

    Args:
        replies: One per request; when they run out, the last one repeats.
        mode: How to answer (``json``, ``plain``, ``ndjson``, ``sse``).
        json_shape: Where a ``json`` answer puts the text.
        sse_payload: What a ``sse`` answer's data lines hold.
        content_type: Overrides the answer's Content-Type (n8n streams NDJSON as
            ``application/json``, which is the default for ``ndjson``).
        delta_s: Delay before each streamed piece.

    Faults (``inject``): ``status``/``retry_after``, ``hang``, ``first_token_delay_s`` and, for
    the streamed modes, ``disconnect_after``; ``error_event_after`` sends an n8n error chunk
    (``ndjson``) or an ``event: error`` (``sse``).
    """

    def __init__(
        self,
        replies: Iterable[str] = ("Hello there.",),
        *,
        mode: WebhookMode = "json",
        json_shape: JsonShape = "output",
        sse_payload: SsePayload = "json",
        content_type: str | None = None,
        delta_s: float = 0.0,
    ) -> None:
        app = Starlette(routes=[Route("/webhook/{hook}", self._webhook, methods=["POST"])])
        super().__init__(app, replies)
        self.reset(
            replies,
            mode=mode,
            json_shape=json_shape,
            sse_payload=sse_payload,
            content_type=content_type,
            delta_s=delta_s,
        )
        #: The webhook URL to configure as ``base_url``.
        self.url = f"{self._thread.base_url}/webhook/voice"

    def reset(
        self,
        replies: Iterable[str] = ("Hello there.",),
        *,
        mode: WebhookMode = "json",
        json_shape: JsonShape = "output",
        sse_payload: SsePayload = "json",
        content_type: str | None = None,
        delta_s: float = 0.0,
    ) -> None:
        """Forget requests, faults and counters; script new replies and a new answer style."""
        self._forget(replies)
        self.mode: WebhookMode = mode
        self.json_shape: JsonShape = json_shape
        self.sse_payload: SsePayload = sse_payload
        self.content_type = content_type
        self.delta_s = delta_s

    def _fault_error(self, fault: Fault) -> object:
        return {"code": fault.status, "message": f"injected {fault.status}"}

    async def _webhook(self, request: Request) -> Response:
        body = await self._received(request)
        fault = self._next_fault()
        if (faulted := await self._faulted(request, fault)) is not None:
            return faulted
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return JSONResponse({"code": 422, "message": "messages required"}, status_code=422)
        text = self._next_reply("")
        if self.mode == "json":
            delay_s = fault.first_token_delay_s
            if delay_s and await wait_for_disconnect(request, self._closing, timeout_s=delay_s):
                return Response(status_code=504)
            answer = _json_answer(text, self.json_shape)
            return Response(
                json.dumps(answer),
                media_type=self.content_type or "application/json; charset=utf-8",
            )
        media_type = {
            "plain": "text/plain; charset=utf-8",
            "ndjson": "application/json; charset=utf-8",
            "sse": "text/event-stream",
        }[self.mode]
        chunks = self._counted(self._chunks(text, fault))
        return StreamingResponse(chunks, media_type=self.content_type or media_type)

    def _frame(self, piece: str) -> str:
        if self.mode == "ndjson":
            return json.dumps({"type": "item", "content": piece, "metadata": {}}) + "\n"
        if self.mode == "sse":
            return _sse_data(piece, self.sse_payload)
        return piece

    def _error_frame(self) -> str:
        if self.mode == "ndjson":
            return json.dumps({"type": "error", "content": "injected workflow error"}) + "\n"
        if self.mode == "sse":
            return 'event: error\ndata: {"message": "injected workflow error"}\n\n'
        return ""

    async def _chunks(self, text: str, fault: Fault) -> AsyncGenerator[str, None]:
        if self.mode == "ndjson":
            yield json.dumps({"type": "begin", "metadata": {"nodeName": "Agent"}}) + "\n"
        if fault.first_token_delay_s:
            await asyncio.sleep(fault.first_token_delay_s)
        for sent, piece in enumerate(word_pieces(text)):
            if sent == fault.disconnect_after:
                raise DroppedConnection("injected disconnect")
            if sent == fault.error_event_after:
                yield self._error_frame()
                return
            if self.delta_s:
                await asyncio.sleep(self.delta_s)
            yield self._frame(piece)
        if self.mode == "ndjson":
            yield json.dumps({"type": "end", "metadata": {"nodeName": "Agent"}}) + "\n"
        elif self.mode == "sse":
            yield "data: [DONE]\n\n"
