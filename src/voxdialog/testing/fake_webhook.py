"""FakeWebhookServer: an n8n-style chat webhook answering in JSON, text, NDJSON or SSE."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voxdialog.testing.fake_http import Fault, Piece, play, wait_for_disconnect
from voxdialog.testing.fake_scripted import ScriptedFake, word_pieces

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
    the streamed modes, the rest; ``error_after`` sends an n8n error chunk (``ndjson``) or an
    ``event: error`` (``sse``).
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
        return {"code": fault.status, "message": fault.message or f"injected {fault.status}"}

    async def _webhook(self, request: Request) -> Response:
        body = await self._received(request)
        fault = self.take_fault(request.url.path)
        if (faulted := await self._faulted(request, fault)) is not None:
            return faulted
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return JSONResponse({"code": 422, "message": "messages required"}, status_code=422)
        text = self._next_reply("")
        if self.mode == "json":
            if fault.malformed_after is not None:
                return Response('{"output": ', media_type="application/json")
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
        chunks = play(
            self._chunks(text),
            fault,
            delay_s=self.delta_s,
            error=self._error_frame(fault),
            malformed='{"type": "item", "cont\n' if self.mode == "ndjson" else 'data: {"te\n\n',
        )
        return StreamingResponse(self.counted(chunks), media_type=self.content_type or media_type)

    def _frame(self, piece: str) -> str:
        if self.mode == "ndjson":
            return json.dumps({"type": "item", "content": piece, "metadata": {}}) + "\n"
        if self.mode == "sse":
            return _sse_data(piece, self.sse_payload)
        return piece

    def _error_frame(self, fault: Fault) -> str:
        message = fault.message or "injected workflow error"
        if self.mode == "ndjson":
            return json.dumps({"type": "error", "content": message}) + "\n"
        if self.mode == "sse":
            return f"event: error\ndata: {json.dumps({'message': message})}\n\n"
        return ""

    def _chunks(self, text: str) -> Iterator[Piece]:
        if self.mode == "ndjson":
            begin = {"type": "begin", "metadata": {"nodeName": "Agent"}}
            yield Piece(json.dumps(begin) + "\n", content=False)
        for piece in word_pieces(text):
            yield Piece(self._frame(piece))
        if self.mode == "ndjson":
            end = {"type": "end", "metadata": {"nodeName": "Agent"}}
            yield Piece(json.dumps(end) + "\n", content=False)
        elif self.mode == "sse":
            yield Piece("data: [DONE]\n\n", content=False)
