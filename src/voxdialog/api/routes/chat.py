"""``POST /v1/chat/completions``: the agent answers as a chat model (JSON or streamed SSE)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from voxdialog.api.deps import RuntimeDep, ScopeDep
from voxdialog.api.errors import ApiError
from voxdialog.brain.base import BrainSession, BrainTurn, HistoryMessage, ReplyText
from voxdialog.pipeline.ids import new_id
from voxdialog.settings import accepts_model

router = APIRouter(prefix="/v1", tags=["chat"])


class ChatMessageIn(BaseModel):
    """One message of the request (text content, or a list of text parts)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text."""
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return " ".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


class ChatCompletionRequest(BaseModel):
    """The subset of the OpenAI request an agent honours; other fields are accepted."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(max_length=128)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=500)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)


def _turn(body: ChatCompletionRequest) -> BrainTurn:
    users = [n for n, m in enumerate(body.messages) if m.role == "user"]
    if not users:
        raise ApiError(
            400, "messages must contain a user message.", code="invalid_value", param="messages"
        )
    last = users[-1]
    instructions = " ".join(m.text() for m in body.messages if m.role in ("system", "developer"))
    history = tuple(
        HistoryMessage(role=m.role, text=m.text())
        for m in body.messages[:last]
        if m.role in ("user", "assistant") and m.text()
    )
    return BrainTurn(text=body.messages[last].text(), history=history, instructions=instructions)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, runtime: RuntimeDep, scope: ScopeDep
) -> Response:
    """Answer with the default agent's brain."""
    if not accepts_model(body.model, runtime.settings.model_name):
        raise ApiError(
            404, f"The model '{body.model}' does not exist.", code="model_not_found", param="model"
        )
    turn = _turn(body)
    session = runtime.brain.open_session(scope)
    completion_id = new_id("chatcmpl")
    created = int(time.time())
    if body.stream:
        options = (body.model_extra or {}).get("stream_options") or {}
        usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return StreamingResponse(
            _sse(session, turn, completion_id, created, body.model, usage=usage),
            media_type="text/event-stream",
        )
    text = "".join([piece async for piece in _texts(session, turn)])
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": _usage(turn, text),
        }
    )


async def _texts(session: BrainSession, turn: BrainTurn) -> AsyncIterator[str]:
    async for event in session.respond(turn):
        if isinstance(event, ReplyText) and event.text:
            yield event.text


def _usage(turn: BrainTurn, text: str) -> dict[str, int]:
    # Token counts are estimates (about four characters a token): the brain may be local.
    prompt = max(1, (len(turn.text) + sum(len(m.text) for m in turn.history)) // 4)
    completion = max(1, len(text) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


async def _sse(
    session: BrainSession,
    turn: BrainTurn,
    completion_id: str,
    created: int,
    model: str,
    *,
    usage: bool,
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(payload)}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""})
    text = ""
    async for piece in _texts(session, turn):
        text += piece
        yield chunk({"content": piece})
    yield chunk({}, "stop")
    if usage:
        final = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": _usage(turn, text),
        }
        yield f"data: {json.dumps(final)}\n\n".encode()
    yield b"data: [DONE]\n\n"
