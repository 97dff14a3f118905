"""FakeAnthropicServer: a local Messages API that streams scripted replies and injects faults.

The fake speaks the real wire protocol (checked with the official ``anthropic`` SDK), so an
HTTP client tested against it is tested against the protocol.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voxdialog.testing.fake_http import Fault, Piece, free_port, play
from voxdialog.testing.fake_scripted import ScriptedFake, word_pieces

__all__ = ["FakeAnthropicServer", "Fault", "Reply", "Thinking", "ToolUse", "free_port"]


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A ``tool_use`` block in a scripted reply (``id`` empty: one is made up)."""

    name: str
    input: dict[str, object]
    id: str = ""


@dataclass(frozen=True, slots=True)
class Thinking:
    """A ``thinking`` block in a scripted reply (extended thinking; never to be spoken)."""

    text: str


#: A scripted reply: plain text, or content blocks (a ``str`` item is a text block).
Reply = str | Sequence[str | ToolUse | Thinking]


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _blocks(reply: Reply) -> list[str | ToolUse | Thinking]:
    blocks = [reply] if isinstance(reply, str) else list(reply)
    return [
        ToolUse(b.name, b.input, b.id or f"toolu_fake{i:02d}") if isinstance(b, ToolUse) else b
        for i, b in enumerate(blocks)
    ]


def _block_json(block: str | ToolUse | Thinking, *, streaming: bool) -> dict[str, Any]:
    if isinstance(block, ToolUse):
        tool_input = {} if streaming else block.input
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": tool_input}
    if isinstance(block, Thinking):
        text = "" if streaming else block.text
        return {"type": "thinking", "thinking": text, "signature": "" if streaming else "sig"}
    return {"type": "text", "text": "" if streaming else block}


def _deltas(block: str | ToolUse | Thinking) -> list[dict[str, Any]]:
    if isinstance(block, ToolUse):
        arguments = json.dumps(block.input)
        # Small fragments that split keys and values, as the real API does.
        return [
            {"type": "input_json_delta", "partial_json": arguments[i : i + 7]}
            for i in range(0, len(arguments), 7)
        ]
    if isinstance(block, Thinking):
        return [
            *({"type": "thinking_delta", "thinking": p} for p in word_pieces(block.text)),
            {"type": "signature_delta", "signature": "sig"},
        ]
    return [{"type": "text_delta", "text": p} for p in word_pieces(block)]


def _problem(body: Any) -> str | None:
    """What the real API would reject in ``body`` (the checks our client could get wrong)."""
    if not isinstance(body, dict):
        return "body: expected an object"
    if not body.get("model") or not isinstance(body.get("max_tokens"), int):
        return "model and max_tokens: field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    tool_ids: set[str] = set()
    previous = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant") or role == previous:
            return f"messages.{i}: roles must alternate between user and assistant"
        previous = role
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            kind = block.get("type")
            if kind == "text" and not block.get("text"):
                return f"messages.{i}: text content blocks must be non-empty"
            if kind == "tool_use":
                if role != "assistant" or not isinstance(block.get("input"), dict):
                    return f"messages.{i}: tool_use must be an assistant block with an input"
                tool_ids.add(block["id"])
            if kind == "tool_result" and block.get("tool_use_id") not in tool_ids:
                return f"messages.{i}: tool_result for an unknown tool_use_id"
    return None


class FakeAnthropicServer(ScriptedFake[Reply]):
    """A local ``POST /v1/messages`` answering each request with the next scripted reply.

    Args:
        replies: One per request; when they run out, the last one repeats.
        api_key: When set, requests without it (as ``x-api-key`` or ``Authorization: Bearer``,
            which SDK 2.x sends) get 401 ``authentication_error``.
        delta_s: Delay before each content delta (to test cancellation mid-stream).

    Use it as a context manager, or call ``start()`` and ``stop()``.
    """

    def __init__(
        self,
        replies: Iterable[Reply] = ("Hello there.",),
        *,
        api_key: str | None = None,
        delta_s: float = 0.0,
    ) -> None:
        app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])
        super().__init__(app, replies)
        self._api_key = api_key
        self.delta_s = delta_s
        #: The base URL to hand a client (``…/v1/messages`` is below it).
        self.url = self._thread.base_url

    def reset(self, replies: Iterable[Reply] = ("Hello there.",), *, delta_s: float = 0.0) -> None:
        """Forget requests, faults and counters; script new replies."""
        self._forget(replies)
        self.delta_s = delta_s

    def _fault_error(self, fault: Fault) -> object:
        return _error_body(
            fault.error_type or "api_error", fault.message or f"injected {fault.status}"
        )

    async def _messages(self, request: Request) -> Response:
        body = await self._received(request)
        if self._api_key is not None and self._api_key not in (
            request.headers.get("x-api-key"),
            request.headers.get("authorization", "").removeprefix("Bearer "),
        ):
            error = _error_body("authentication_error", "invalid x-api-key")
            return JSONResponse(error, status_code=401)
        if "anthropic-version" not in request.headers:
            error = _error_body("invalid_request_error", "anthropic-version: header is required")
            return JSONResponse(error, status_code=400)
        fault = self.take_fault(request.url.path)
        if (faulted := await self._faulted(request, fault)) is not None:
            return faulted
        problem = _problem(body)
        if problem is not None:
            error = _error_body("invalid_request_error", problem)
            return JSONResponse(error, status_code=400)
        blocks = _blocks(self._next_reply(""))
        uses_tools = any(isinstance(b, ToolUse) for b in blocks)
        message = {
            "id": "msg_fake01",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [_block_json(b, streaming=False) for b in blocks],
            "stop_reason": "tool_use" if uses_tools else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 7},
        }
        if not body.get("stream"):
            return JSONResponse(message)
        stream_error = _error_body(
            fault.error_type or "api_error", fault.message or "injected stream error"
        )
        events = play(
            _events(message, blocks),
            fault,
            delay_s=self.delta_s,
            error=_sse("error", stream_error),
            malformed='event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n',
        )
        return StreamingResponse(self.counted(events), media_type="text/event-stream")


def _events(message: dict[str, Any], blocks: list[str | ToolUse | Thinking]) -> Iterator[Piece]:
    """The stream of ``message``: each content delta is a content piece, the rest framing."""
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 12, "output_tokens": 1}
    yield Piece(_sse("message_start", {"type": "message_start", "message": start}), False)
    yield Piece(_sse("ping", {"type": "ping"}), False)
    for index, block in enumerate(blocks):
        content_block = _block_json(block, streaming=True)
        opened = {
            "type": "content_block_start",
            "index": index,
            "content_block": content_block,
        }
        yield Piece(_sse("content_block_start", opened), False)
        for delta in _deltas(block):
            event = {"type": "content_block_delta", "index": index, "delta": delta}
            yield Piece(_sse("content_block_delta", event))
        yield Piece(
            _sse("content_block_stop", {"type": "content_block_stop", "index": index}), False
        )
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": 7},
    }
    yield Piece(_sse("message_delta", message_delta), False)
    yield Piece(_sse("message_stop", {"type": "message_stop"}), False)
